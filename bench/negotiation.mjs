#!/usr/bin/env node
// The negotiation overload scenario, one measurement per process (bench/run.mjs runs it):
//   node bench/negotiation.mjs '{"connections":10,"streams":1000,"perConnection":8,"overall":64,"handlerMs":50}'
// `streams` streams are dialled at once, spread over `connections` connections, against a
// ProtocolRouter whose handler answers after `handlerMs`. perConnection/overall null = no limit.
// The clients do not limit themselves: the server's limits are what is measured. Prints JSON.
import { createSelfSignedCertificate, connect, dialProtocol, listen, ProtocolRouter } from '../dist/index.js'

const params = JSON.parse(process.argv[2])
const limit = value => value === null ? Infinity : value
const PROTOCOL = '/bench/echo/1.0.0'

const { cert, key } = await createSelfSignedCertificate()
const perConnection = limit(params.perConnection)
const overall = limit(params.overall)
// Each connection's first credit: its share of what the router negotiates at once (the default,
// 100, without limits). The router grants the rest as slots free up.
const first = perConnection === Infinity ? 100 : Math.max(1, Math.min(perConnection, Math.floor(overall / params.connections)))
const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'bench', cert, key, maxBidirectionalStreams: first })
const router = new ProtocolRouter({ maxNegotiationsPerConnection: perConnection, maxNegotiations: overall })
router.handle(PROTOCOL, async stream => {
  const chunks = []
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk)
  if (params.handlerMs > 0) await new Promise(resolve => setTimeout(resolve, params.handlerMs))
  stream.end(Buffer.concat(chunks))
})
void router.serve(listener)

const connections = await Promise.all(Array.from({ length: params.connections }, () =>
  connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'bench', ca: cert })))
const perClient = Math.ceil(params.streams / params.connections)
const outcomes = []
const started = performance.now()
await Promise.all(connections.map(async connection => {
  await Promise.all(Array.from({ length: perClient }, async () => {
    const begin = performance.now()
    try {
      const { stream } = await dialProtocol(connection, [PROTOCOL], { timeout: 10_000, maxNegotiationsPerConnection: Infinity })
      const negotiated = performance.now() - begin
      stream.end('ping')
      const chunks = []
      for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk)
      outcomes.push({ negotiated, ok: Buffer.concat(chunks).toString() === 'ping' })
    } catch (error) {
      outcomes.push({ negotiated: performance.now() - begin, ok: false, code: error.code })
    }
  }))
}))
const seconds = (performance.now() - started) / 1000
const times = outcomes.map(o => o.negotiated).sort((a, b) => a - b)
const at = q => times[Math.min(times.length - 1, Math.floor(times.length * q))]
const server = router.metrics.snapshot()
console.log(JSON.stringify({ metrics: {
  completed: outcomes.filter(o => o.ok).length,
  failed: outcomes.filter(o => !o.ok).length,
  busy: outcomes.filter(o => o.code === 'ERR_NEGOTIATION_BUSY').length,
  timeouts: outcomes.filter(o => o.code === 'ERR_NEGOTIATION_TIMEOUT').length,
  p50Ms: at(0.5),
  p99Ms: at(0.99),
  maxMs: times[times.length - 1],
  streamsPerSecond: outcomes.length / seconds,
  serverPeak: server.peakInFlight,
  errors: outcomes.filter(o => !o.ok).length
} }))
await Promise.all(connections.map(connection => connection.close()))
await listener.close()
