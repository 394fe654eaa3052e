// node-msquic: this package, as a Node service would use it.
import { pipeline } from 'node:stream/promises'
import { connect, createSelfSignedCertificate, getDeliveryStats, listen } from '../../dist/index.js'
import { CHUNK, MiB, mainThreadCpuMs, measureIdle, percentile, runOps } from '../lib.mjs'

async function readAll (stream) {
  let bytes = 0
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) bytes += chunk.length
  return bytes
}

async function write (stream, total) {
  for (let sent = 0; sent < total; sent += CHUNK.length) {
    const chunk = total - sent < CHUNK.length ? CHUNK.subarray(0, total - sent) : CHUNK
    if (!stream.write(chunk)) await new Promise(resolve => stream.once('drain', resolve))
  }
  stream.end()
}

async function setup (serve, settings = {}) {
  const { cert, key } = await createSelfSignedCertificate({ hosts: ['127.0.0.1'] })
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'bench', cert, key, maxBidirectionalStreams: 1000, ...settings })
  void (async () => {
    for await (const connection of listener) {
      void (async () => { for await (const stream of connection) void serve(stream).catch(() => {}) })().catch(() => {})
    }
  })()
  const dial = (options = {}) => connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'bench', ca: cert, ...options })
  return { listener, dial }
}

export async function bulk ({ bytes, direction }) {
  let received = 0
  const { listener, dial } = await setup(async stream => {
    if (direction === 'up') {
      received = await readAll(stream)
      stream.end()
    } else {
      await readAll(stream)
      await write(stream, bytes)
    }
  })
  const client = await dial()
  const stream = await client.openStream()
  const before = getDeliveryStats()
  const cpu = mainThreadCpuMs()
  const begin = performance.now()
  if (direction === 'up') {
    await write(stream, bytes)
    await readAll(stream)
  } else {
    stream.end()
    received = await readAll(stream)
  }
  const seconds = (performance.now() - begin) / 1000
  const cpuMs = mainThreadCpuMs() - cpu
  const after = getDeliveryStats()
  await client.close()
  await listener.close()
  if (received !== bytes) throw new Error(`bulk: ${received} of ${bytes} bytes arrived`)
  return {
    mibPerSecond: bytes / MiB / seconds,
    seconds,
    mainThreadCpuMsPerMiB: cpuMs / (bytes / MiB),
    eventsPerWakeup: (after.events - before.events) / Math.max(1, after.wakeups - before.wakeups)
  }
}

export async function echo ({ streams, concurrency, size, timeoutMs }) {
  const { listener, dial } = await setup(async stream => {
    const chunks = []
    for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk)
    stream.end(Buffer.concat(chunks))
  })
  const client = await dial()
  const request = Buffer.alloc(size, 7)
  const before = getDeliveryStats()
  const result = await runOps({ total: streams, concurrency, timeoutMs }, async () => {
    const stream = await client.openStream()
    stream.end(request)
    const length = await readAll(stream)
    if (length !== size) throw new Error(`short echo: ${length}`)
  })
  const after = getDeliveryStats()
  void client.close()
  void listener.close()
  return { ...summarise(result), ...perStream(before, after, result) }
}

// The request path: connection.request() against listener.serveRequests(), 64 B each way.
export async function request ({ streams, concurrency, size, timeoutMs }) {
  const { cert, key } = await createSelfSignedCertificate({ hosts: ['127.0.0.1'] })
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'bench', cert, key })
  listener.serveRequests(body => body, { concurrency: Math.max(100, concurrency) })
  const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'bench', ca: cert })
  const body = Buffer.alloc(size, 7)
  const before = getDeliveryStats()
  const result = await runOps({ total: streams, concurrency, timeoutMs }, async () => {
    const reply = await client.request(body)
    if (reply.length !== size) throw new Error(`short reply: ${reply.length}`)
  })
  const after = getDeliveryStats()
  void client.close()
  void listener.close()
  return { ...summarise(result), ...perStream(before, after, result) }
}

// The Duplex echo written the common way, with the listener's default settings: pipeline() on
// the server, for await on the client.
export async function echoDefault ({ streams, concurrency, size, timeoutMs }) {
  const { cert, key } = await createSelfSignedCertificate({ hosts: ['127.0.0.1'] })
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'bench', cert, key })
  void (async () => {
    for await (const connection of listener) {
      void (async () => { for await (const stream of connection) pipeline(stream, stream).catch(() => {}) })().catch(() => {})
    }
  })()
  const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'bench', ca: cert })
  const request = Buffer.alloc(size, 7)
  const before = getDeliveryStats()
  const result = await runOps({ total: streams, concurrency, timeoutMs }, async () => {
    const stream = await client.openStream()
    stream.end(request)
    let length = 0
    for await (const chunk of stream) length += chunk.length
    if (length !== size) throw new Error(`short echo: ${length}`)
  })
  const after = getDeliveryStats()
  void client.close()
  void listener.close()
  return { ...summarise(result), ...perStream(before, after, result) }
}

export async function handshakes ({ connections, concurrency, timeoutMs }) {
  const { listener, dial } = await setup(async () => {})
  const result = await runOps({ total: connections, concurrency, timeoutMs }, async () => {
    const connection = await dial()
    await connection.close()
  })
  await listener.close()
  return { connectionsPerSecond: result.completed / result.seconds, completed: result.completed, errors: result.errors }
}

// Handshakes that resume a session: the server sends tickets, each client passes the one ticket a
// first connection received. `full` is the same server without the ticket, measured alongside.
export async function resumed ({ connections, concurrency, timeoutMs }) {
  const { listener, dial } = await setup(async () => {}, { sessionTickets: true })
  const first = await dial()
  const sessionTicket = first.sessionTicket ?? await new Promise(resolve => first.once('sessionTicket', resolve))
  await first.close()
  const measure = async (options) => {
    let resumedCount = 0
    const result = await runOps({ total: connections, concurrency, timeoutMs }, async () => {
      const connection = await dial(options)
      if (connection.sessionResumed) resumedCount++
      await connection.close()
    })
    return { rate: result.completed / result.seconds, completed: result.completed, errors: result.errors, resumed: resumedCount }
  }
  const full = await measure({})
  const again = await measure({ sessionTicket })
  await listener.close()
  return {
    connectionsPerSecond: again.rate,
    fullConnectionsPerSecond: full.rate,
    completed: again.completed,
    errors: again.errors + full.errors,
    resumed: again.resumed
  }
}

// One 64-byte request at a time, four ways interleaved, each from its start to the reply: on a
// connection already open; on a new connection (full handshake); on a resumed one (its request
// sent once connected); on a resumed one with 0-RTT (the request in the first flight).
export async function earlyRequest ({ requests, timeoutMs }) {
  const { cert, key } = await createSelfSignedCertificate({ hosts: ['127.0.0.1'] })
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'bench', cert, key, sessionTickets: '0rtt' })
  listener.serveRequests(body => body)
  const options = { host: '127.0.0.1', port: listener.address().port, alpn: 'bench', ca: cert }
  const open = await connect(options)
  const first = await connect(options)
  const sessionTicket = first.sessionTicket ?? await new Promise(resolve => first.once('sessionTicket', resolve))
  await first.close()
  const body = Buffer.alloc(64, 7)
  let early = 0
  const kinds = {
    established: async () => { await open.request(body) },
    full: async () => { const c = await connect(options); await c.request(body); void c.close() },
    resumed: async () => { const c = await connect({ ...options, sessionTicket }); await c.request(body); void c.close() },
    zeroRtt: async () => {
      const c = await connect({ ...options, sessionTicket, earlyData: true })
      if (c.earlyData) early++
      await c.request(body)
      void c.close()
    }
  }
  const latencies = Object.fromEntries(Object.keys(kinds).map(kind => [kind, []]))
  const deadline = performance.now() + timeoutMs
  for (let i = 0; i < requests && performance.now() < deadline; i++) {
    for (const [kind, run] of Object.entries(kinds)) {
      const t = performance.now()
      await run()
      latencies[kind].push((performance.now() - t) * 1000)
    }
  }
  await open.close()
  await listener.close()
  const stats = values => ({ p50Us: percentile(values, 0.5), p99Us: percentile(values, 0.99), maxUs: Math.max(...values), completed: values.length })
  return { ...Object.fromEntries(Object.entries(latencies).map(([kind, values]) => [kind, stats(values)])), earlyDataConnections: early }
}

// Handshakes (connect, then close) with what each costs the JS thread: native events, native calls
// and JS wake-ups (both ends together), and the process's CPU time. `resume`: with a session ticket.
export async function handshakeCosts ({ connections, concurrency, resume = false, timeoutMs }) {
  const { listener, dial } = await setup(async () => {}, { sessionTickets: true })
  const first = await dial()
  const sessionTicket = resume ? first.sessionTicket ?? await new Promise(resolve => first.once('sessionTicket', resolve)) : undefined
  await first.close()
  const options = resume ? { sessionTicket } : {}
  const before = getDeliveryStats()
  const cpu = process.cpuUsage()
  const result = await runOps({ total: connections, concurrency, timeoutMs }, async () => {
    const connection = await dial(options)
    await connection.close()
  })
  // The last final events.
  await new Promise(resolve => setTimeout(resolve, 100))
  const used = process.cpuUsage(cpu)
  const after = getDeliveryStats()
  await listener.close()
  return {
    connectionsPerSecond: result.completed / result.seconds,
    completed: result.completed,
    errors: result.errors,
    eventsPerHandshake: (after.events - before.events) / result.completed,
    nativeCallsPerHandshake: (after.nativeCalls - before.nativeCalls) / result.completed,
    wakeupsPerHandshake: (after.wakeups - before.wakeups) / result.completed,
    cpuUsPerHandshake: (used.user + used.system) / result.completed
  }
}

export async function idle ({ connections }) {
  const { listener, dial } = await setup(async () => {})
  const { bytesPerConnection, opened } = await measureIdle(dial, connections)
  await Promise.all(opened.map(c => c.close()))
  await listener.close()
  return { bytesPerConnection, connected: opened.length - 1 }
}

// Native events and calls into native streams and connections per stream (both sides), and the
// batching of event delivery.
function perStream (before, after, result) {
  return {
    eventsPerWakeup: (after.events - before.events) / Math.max(1, after.wakeups - before.wakeups),
    eventsPerStream: (after.events - before.events) / result.completed,
    nativeCallsPerStream: (after.nativeCalls - before.nativeCalls) / result.completed
  }
}

export function summarise (result) {
  return {
    streamsPerSecond: result.completed / result.seconds,
    p50Us: percentile(result.latencies, 0.5),
    p99Us: percentile(result.latencies, 0.99),
    completed: result.completed,
    errors: result.errors,
    hung: result.hung,
    ...(result.firstError !== undefined ? { firstError: result.firstError } : {})
  }
}
