import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { describe, it, expect } from 'vitest'
import { QuicConnection, QuicErrorCode, QuicStream, type QuicStreamHandle } from '../../src/index.js'
import { pair, readAll, until } from '../helpers.js'
// @ts-expect-error a plain ES module fixture shared with the worker
import { payload, readSome } from './fixtures/stream-hops.mjs'

const workerFile = fileURLToPath(new URL('./fixtures/stream-worker.mjs', import.meta.url))

interface HopState { index: number, offset: number, bad: number, ended: boolean }
interface Reply { handle?: QuicStreamHandle, state?: HopState, error?: string, holding?: boolean }

/** Sends jobs to a worker and matches its replies to them by stream number. */
function jobs (worker: Worker): (job: { handle: QuicStreamHandle, state: HopState, mode: string, want?: number }) => Promise<Reply> {
  const waiting = new Map<number, (reply: Reply) => void>()
  worker.on('message', (reply: Reply) => {
    const index = reply.state?.index ?? -1
    waiting.get(index)?.(reply)
    waiting.delete(index)
  })
  return async job => await new Promise(resolve => {
    waiting.set(job.state.index, resolve)
    worker.postMessage(job)
  })
}

/** Writes stream `index`'s payload in `chunk`-sized pieces, yielding between them, then ends it. */
async function send (stream: QuicStream, index: number, length: number, chunk: number): Promise<void> {
  for (let offset = 0; offset < length; offset += chunk) {
    const piece = payload(index, offset, Math.min(chunk, length - offset)) as Buffer
    if (!stream.write(piece)) await once(stream, 'drain')
    else await new Promise(resolve => setImmediate(resolve))
  }
  stream.end()
}

describe('moving a single stream between threads', () => {
  it('should carry unread bytes and the peer\'s end across a move within one thread, and refuse the old object', async () => {
    const { listener, client, server } = await pair()
    const outbound = await client.openStream()
    const middle = Buffer.alloc(200 * 1024, 'm')
    outbound.write('hello ')
    outbound.write(middle)
    const inbound = await server.acceptStream()
    // Bytes in the reader's buffer unread (up to its high-water mark), and more queued behind them
    // on this side that the reader has not asked for yet.
    inbound.read(0)
    await until(() => inbound.readableLength >= inbound.readableHighWaterMark, 'the reader\'s buffer to fill')
    outbound.end('world')
    await new Promise(resolve => setTimeout(resolve, 50))
    let ended = false
    inbound.on('end', () => { ended = true })
    const handle = inbound.transfer()
    expect(inbound.transferred).toBe(true)
    expect(inbound.destroyed).toBe(true)
    expect(() => inbound.reset(1)).toThrow(expect.objectContaining({ code: QuicErrorCode.TRANSFERRED }))
    expect(() => inbound.transfer()).toThrow(expect.objectContaining({ code: QuicErrorCode.TRANSFERRED }))
    const adopted = QuicStream.adopt(handle)
    expect(() => QuicStream.adopt(handle)).toThrow(/no stream is waiting/)
    expect(() => QuicConnection.adopt({ kind: 'node-msquic/connection', id: handle.id, streams: [] })).toThrow(/no connection is waiting/)
    expect((await readAll(adopted)).toString()).toBe(`hello ${middle.toString()}world`)
    adopted.end('answered')
    expect((await readAll(outbound)).toString()).toBe('answered')
    expect(ended).toBe(false)
    // The connection no longer counts the stream that left: a graceful close does not wait for it.
    expect(server.stats().openStreams).toBe(0)
    await client.close()
    await listener.close()
  })

  it('should keep a moved stream\'s events apart when its connection moves afterwards', async () => {
    const { listener, client, server } = await pair()
    const outbound = await client.openStream()
    outbound.write('first ')
    const inbound = await server.acceptStream()
    const stream = QuicStream.adopt(inbound.transfer())
    // The connection moves too (it no longer counts the stream that left); the stream stays put.
    const connection = QuicConnection.adopt(server.transfer())
    outbound.end('second')
    expect((await readAll(stream)).toString()).toBe('first second')
    stream.end('answer')
    expect((await readAll(outbound)).toString()).toBe('answer')
    const next = await client.openStream()
    next.end('to the moved connection')
    const accepted = await connection.acceptStream()
    expect((await readAll(accepted)).toString()).toBe('to the moved connection')
    accepted.end()
    await readAll(next)
    await client.close({ code: 3 })
    expect(await connection.closed).toMatchObject({ by: 'peer', code: 3n })
    await listener.close()
  })

  it('should carry a reset that came before the app could hear it', async () => {
    const { listener, client, server } = await pair()
    const outbound = await client.openStream()
    outbound.on('error', () => {})  // the adopted side's destroy() aborts it back
    outbound.write('then gone')
    await until(() => server.pendingStreams > 0, 'the stream to arrive')
    outbound.reset(7)
    await new Promise(resolve => setTimeout(resolve, 50))
    // Taken and moved in one go: the reset is already here, not yet reported.
    const adopted = QuicStream.adopt((await server.acceptStream()).transfer())
    const failure = await new Promise<Error & { code?: string, errorCode?: number | bigint }>(resolve => adopted.once('error', resolve))
    expect(failure).toMatchObject({ code: QuicErrorCode.STREAM_RESET, errorCode: 7n })
    await client.close()
    await listener.close()
  })

  it('should refuse to move a stream that is being read or written', async () => {
    const { listener, client, server } = await pair()
    const outbound = await client.openStream()
    outbound.on('error', () => {})  // reset when the server side is destroyed at the end
    outbound.write('x')
    const inbound = await server.acceptStream()
    const onData = (): void => {}
    inbound.on('data', onData)
    expect(() => inbound.transfer()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }))
    inbound.off('data', onData)
    inbound.pause()
    // More than the send window at once: the write waits for room.
    inbound.write(Buffer.alloc(4 * 1024 * 1024))
    expect(() => inbound.transfer()).toThrow(/drain/)
    expect(() => QuicStream.adopt({ kind: 'node-msquic/connection', id: 1 } as unknown as QuicStreamHandle)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    inbound.destroy()
    await client.close()
    await listener.close()
  })

  it('should lose no byte while streams move main -> worker A -> main -> worker B mid-transfer', async () => {
    const total = 200
    const length = 512 * 1024
    const { listener, client, server } = await pair({ maxBidirectionalStreams: total })
    const workers = [new Worker(workerFile), new Worker(workerFile)]
    const [toA, toB] = workers.map(jobs)
    const started = Date.now()
    const indexOf = new Map<number | null, number>()
    let moves = 0
    const answers = Promise.all(Array.from({ length: total }, async (_, index) => {
      const stream = await client.openStream()
      indexOf.set(stream.id, index)
      const [answer] = await Promise.all([readAll(stream), send(stream, index, length, 16 * 1024)])
      return answer.toString()
    }))
    const served = Promise.all(Array.from({ length: total }, async (_, n) => {
      const first = await server.acceptStream()
      await until(() => indexOf.has(first.id), 'the client to know the stream')
      const state: HopState = { index: indexOf.get(first.id) as number, offset: 0, bad: 0, ended: false }
      // Each thread reads a different share, while the client keeps sending.
      await readSome(first, state, 1 + (n * 997) % (32 * 1024))
      const a = await toA({ handle: first.transfer(), state, mode: 'partial', want: 64 * 1024 })
      const back = QuicStream.adopt(a.handle as QuicStreamHandle)
      Object.assign(state, a.state)
      await readSome(back, state, 16 * 1024)
      const b = await toB({ handle: back.transfer(), state, mode: 'finish' })
      moves += 3
      return b.state as HopState
    }))
    const states = await served
    const replies = await answers
    const seconds = (Date.now() - started) / 1000
    expect(states.map(state => state.bad)).toEqual(Array(total).fill(0))
    expect(new Set(states.map(state => state.index)).size).toBe(total)
    expect(replies).toEqual(Array(total).fill(`ok ${length} 0`))
    console.log(`stream moves: ${total} streams x ${length / 1024} KiB, ${moves} moves between 3 threads mid-transfer, every byte checked, in ${seconds.toFixed(1)} s`)
    await client.close()
    await Promise.all(workers.map(async w => await w.terminate()))
    await listener.close()
  }, 120_000)

  it('should end a moved stream for the peer when its worker is terminated, and keep the connection', async () => {
    const { listener, client, server } = await pair()
    const worker = new Worker(workerFile)
    const outbound = await client.openStream()
    outbound.write('held by a worker')
    const inbound = await server.acceptStream()
    const holding = once(worker, 'message')
    worker.postMessage({ handle: inbound.transfer(), state: { index: 0 }, mode: 'hold' })
    expect((await holding)[0]).toMatchObject({ holding: true })
    const failed = new Promise<Error & { code?: string }>(resolve => outbound.once('error', resolve))
    await worker.terminate()
    expect((await failed).code).toBe(QuicErrorCode.STREAM_RESET)
    // The connection lives on, with its other streams.
    const next = await client.openStream()
    next.end('still here')
    const echoed = await server.acceptStream()
    expect((await readAll(echoed)).toString()).toBe('still here')
    echoed.end()
    await client.close()
    await listener.close()
  })

  it('should end a moved stream with ERR_QUIC_CLOSED when its connection closes on the other thread', async () => {
    const { listener, client, server } = await pair()
    const worker = new Worker(workerFile)
    const outbound = await client.openStream()
    outbound.write('x')
    outbound.on('error', () => {})
    const inbound = await server.acceptStream()
    const replies: Reply[] = []
    worker.on('message', (reply: Reply) => replies.push(reply))
    worker.postMessage({ handle: inbound.transfer(), state: { index: 0 }, mode: 'hold' })
    await until(() => replies.length > 0, 'the worker to hold the stream')
    await server.close({ code: 7 })
    await until(() => replies.length > 1, 'the worker to see its stream end')
    expect(replies[1]).toEqual({ error: QuicErrorCode.CLOSED })
    await worker.terminate()
    await listener.close()
  })
})
