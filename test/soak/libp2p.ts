/**
 * The random-abort soak over libp2p streams: two js-libp2p nodes on our transport, one long-lived
 * connection with little stream credit, many streams in flight; each side picks a plan written the
 * way libp2p code is written (for await, send/onDrain, close) and cancels at random points: abort
 * (a reset both ways), closeRead (STOP_SENDING), closeWrite (FIN), or the peer's reset. Every
 * stream must reach a final status on both sides, and the connection must be usable at the end
 * with no native stream left.
 */
import type { Libp2p, Stream } from '@libp2p/interface'
import { quicConnectionOf } from '../../src/libp2p/index.js'
import { createNode, type TestNode } from '../libp2p/nodes.js'
import { Random, driveOperations, settleOpen, sleep, type SoakTotals } from './random.js'

export const SOAK_PROTOCOL = '/node-msquic/soak/1.0.0'

export interface Libp2pSoakOptions {
  seed: number
  operations: number
  inFlight: number
  /** The QUIC stream credit each node grants (maxStreams). */
  credit: number
  watchdog: number
}

export interface Libp2pSoakReport extends SoakTotals {
  /** Streams not in a final status at the end, by side. */
  unfinished: { client: string[], server: string[] }
  /** After the soak: a checked echo, js-libp2p's open streams and the native ones, both sides. */
  after: { echo: boolean, clientStreams: number, serverStreams: number, clientNative: number, serverNative: number }
}

const FINAL = new Set(['closed', 'reset', 'aborted'])

class Tracker {
  readonly open = new Map<Stream, string>()
  readonly counts = { client: 0, server: 0 }
  readonly errors: Record<string, number> = {}
  readonly log = (error: unknown): void => {
    const name = (error as { name?: string, code?: string } | null)?.code ?? (error as Error | null)?.name ?? String(error)
    this.errors[name] = (this.errors[name] ?? 0) + 1
  }

  track (stream: Stream, side: 'client' | 'server', plan: string): Stream {
    this.counts[side]++
    // A stream can end before the code that awaited it runs (a fast reset from the peer).
    if (FINAL.has(stream.status)) return stream
    this.open.set(stream, `${side} ${plan}`)
    stream.addEventListener('close', () => { this.open.delete(stream) }, { once: true })
    return stream
  }

  async finished (stream: Stream): Promise<void> {
    if (FINAL.has(stream.status)) return
    await new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }, { once: true }) })
  }

  describe (side: string): string[] {
    const out: string[] = []
    for (const [s, what] of this.open) {
      if (what.startsWith(side)) out.push(`${what}: status ${s.status} read ${s.readStatus} write ${s.writeStatus} remote read ${s.remoteReadStatus} remote write ${s.remoteWriteStatus}`)
    }
    return out
  }
}

async function sendAll (stream: Stream, data: Uint8Array, chunk = 8 * 1024): Promise<void> {
  for (let i = 0; i < data.length; i += chunk) {
    if (stream.writeStatus !== 'writable') return
    if (!stream.send(data.subarray(i, i + chunk))) await stream.onDrain().catch(() => {})
  }
}

async function readAll (stream: Stream, log: (error: unknown) => void): Promise<number> {
  let n = 0
  try {
    for await (const chunk of stream) n += chunk.byteLength
  } catch (error) {
    log(error)
  }
  return n
}

const clientPlans: Record<string, (s: Stream, r: Random, t: Tracker) => Promise<void>> = {
  'send-close-read': async (s, r, t) => {
    const reading = readAll(s, t.log)
    await sendAll(s, r.bytes(1 + r.int(20_000), 1))
    await s.close().catch(t.log)
    await reading
  },
  abort: async (s, r, t) => {
    const reading = readAll(s, t.log)
    s.send(r.bytes(1 + r.int(4_000), 2))
    await sleep(r.int(3))
    s.abort(new Error('the client gave up'))
    await reading
  },
  'close-read-then-send': async (s, r, t) => {
    await s.closeRead().catch(t.log)
    await sendAll(s, r.bytes(1 + r.int(8_000), 3))
    await s.close().catch(t.log)
  },
  'close-at-once': async (s, _r, t) => {
    const reading = readAll(s, t.log)
    await s.close().catch(t.log)
    await reading
  },
  'send-then-close-read': async (s, r, t) => {
    await sendAll(s, r.bytes(1 + r.int(8_000), 4))
    await s.close().catch(t.log)
    await sleep(r.int(3))
    await s.closeRead().catch(t.log)
  }
}

const serverPlans: Record<string, (s: Stream, r: Random, t: Tracker) => Promise<void>> = {
  echo: async (s, _r, t) => {
    try {
      for await (const chunk of s) if (!s.send(chunk)) await s.onDrain()
      await s.close()
    } catch (error) {
      t.log(error)
    }
  },
  'abort-soon': async (s, r, t) => {
    const reading = readAll(s, t.log)
    await sleep(r.int(3))
    s.abort(new Error('the server gave up'))
    await reading
  },
  'reply-then-close-read': async (s, r, t) => {
    await sendAll(s, r.bytes(1 + r.int(4_000), 5))
    await s.close().catch(t.log)
    await s.closeRead().catch(t.log)
  },
  'read-all-then-reply': async (s, r, t) => {
    await readAll(s, t.log)
    if (s.writeStatus === 'writable') await sendAll(s, r.bytes(1 + r.int(4_000), 6))
    await s.close().catch(t.log)
  },
  'close-read-at-once': async (s, r, t) => {
    await s.closeRead().catch(t.log)
    await sendAll(s, r.bytes(1 + r.int(2_000), 7))
    await s.close().catch(t.log)
  }
}

export async function soakLibp2p (options: Libp2pSoakOptions): Promise<Libp2pSoakReport> {
  const transport = { maxStreams: options.credit }
  const server: TestNode = await createNode({ options: transport })
  const client: TestNode = await createNode({ options: transport })
  const tracker = new Tracker()
  const serverRandom = new Random(options.seed ^ 0x5eed)
  let checking = false
  await server.handle(SOAK_PROTOCOL, async (stream) => {
    const name = checking ? 'echo' : serverRandom.pick(Object.keys(serverPlans))
    tracker.track(stream, 'server', name)
    await serverPlans[name](stream, serverRandom, tracker)
  }, { maxInboundStreams: 4096 })
  const peer = server.getMultiaddrs()[0]
  await client.dial(peer)

  const random = new Random(options.seed)
  const { plans, hung, seconds } = await driveOperations(options, () => random.pick(Object.keys(clientPlans)), async name => {
    const stream = tracker.track(await client.dialProtocol(peer, SOAK_PROTOCOL, { maxOutboundStreams: 4096 } as never), 'client', name)
    await clientPlans[name](stream, random, tracker)
    await tracker.finished(stream)
  }, error => { tracker.log(error) })
  await settleOpen(tracker.open)
  const unfinished = { client: tracker.describe('client'), server: tracker.describe('server') }

  checking = true
  let echo = false
  try {
    const stream = await client.dialProtocol(peer, SOAK_PROTOCOL)
    const body = new TextEncoder().encode('still alive')
    const reading = (async () => { const chunks: Uint8Array[] = []; for await (const c of stream) chunks.push(c.subarray()); return Buffer.concat(chunks) })()
    stream.send(body)
    await stream.close()
    echo = (await reading).equals(body)
  } catch (error) {
    tracker.log(error)
  }
  const connections = (node: Libp2p): ReturnType<Libp2p['getConnections']> => node.getConnections()
  const native = (node: Libp2p): number => connections(node).reduce((n, c) => n + (quicConnectionOf(c)?.stats().openStreams ?? 0), 0)
  const streams = (node: Libp2p): number => connections(node).reduce((n, c) => n + c.streams.length, 0)
  const nativeDeadline = Date.now() + 5_000
  while ((native(client) + native(server) + streams(client) + streams(server)) > 0 && Date.now() < nativeDeadline) await sleep(10)
  const after = { echo, clientStreams: streams(client), serverStreams: streams(server), clientNative: native(client), serverNative: native(server) }
  await Promise.all([client.stop(), server.stop()])
  return { operations: options.operations, seconds, hung, unfinished, streams: { ...tracker.counts }, errors: tracker.errors, plans, after }
}
