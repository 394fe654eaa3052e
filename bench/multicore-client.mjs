// The load of bench/multicore.mjs: 8 connections, 25 echo streams in flight on each.
//   node bench/multicore-client.mjs <port> <ca-file> <streams>
import { readFileSync } from 'node:fs'
import { connect } from '../dist/index.js'
import { percentile, runOps } from './lib.mjs'

const [port, caFile, total] = process.argv.slice(2)
const ca = readFileSync(caFile, 'utf8')
const connections = await Promise.all(Array.from({ length: 8 }, () => connect({ host: '127.0.0.1', port: Number(port), alpn: 'bench', ca })))
const request = Buffer.alloc(64, 7)
let next = 0
const result = await runOps({ total: Number(total), concurrency: 200, timeoutMs: 120_000 }, async () => {
  const connection = connections[next++ % connections.length]
  const stream = await connection.openStream()
  stream.end(request)
  let length = 0
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) length += chunk.length
  if (length !== 64) throw new Error(`short echo: ${length}`)
})
await Promise.all(connections.map(c => c.close()))
console.log(JSON.stringify({
  streamsPerSecond: result.completed / result.seconds,
  p50Us: percentile(result.latencies, 0.5),
  p99Us: percentile(result.latencies, 0.99),
  completed: result.completed,
  errors: result.errors,
  hung: result.hung
}))
process.exit(0)
