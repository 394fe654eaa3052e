/**
 * The two directions of a QUIC stream are independent (RFC 9000 §3): a RESET_STREAM ends only the
 * receiver's read side, a STOP_SENDING only the sender's write side; the other direction goes on.
 * And 'finish' (queued) is not 'acknowledged' (the peer has every byte).
 */
import { describe, it, expect, vi } from 'vitest'
import { QuicErrorCode, type QuicStream } from '../../src/index.js'
import { Ev, kOnNativeEvent } from '../../src/native.js'
import { StreamCore } from '../../src/quic/stream-core.js'
import { once, pair, readAll, until } from '../helpers.js'

describe('stream directions', () => {
  it('should keep writing after the peer resets its sending side, when the app asks (autoDestroy: false)', async () => {
    const { listener, client, server } = await pair()
    const outbound = await client.openStream()
    outbound.write('request')
    const inbound = await server.acceptStream({ autoDestroy: false })
    const failed = once(inbound, 'error')
    outbound.reset(5)
    const [error] = await failed
    expect(error).toMatchObject({ code: QuicErrorCode.STREAM_RESET, errorCode: 5n, direction: 'read' })
    expect([inbound.readState, inbound.writeState]).toEqual(['reset', 'open'])
    // The reply after the reset reaches the client in full.
    const reply = Buffer.alloc(256 * 1024, 7)
    const closed = once(inbound, 'close')
    inbound.end(reply)
    expect((await readAll(outbound)).equals(reply)).toBe(true)
    await closed
    expect(outbound.writeState).toBe('reset')
    await client.close()
    await listener.close()
  })

  it('should deliver an early response when the server answers and stops the rest of the request (HTTP/3 style)', async () => {
    const { listener, client, server } = await pair()
    const request = await client.openStream()
    const writeFailed = once(request, 'error')
    const received: Buffer[] = []
    const ended = new Promise<void>(resolve => {
      request.on('data', (chunk: Buffer) => received.push(chunk))
      request.on('end', resolve)
    })
    // The client streams a body it never finishes; the server reads a little, answers, and
    // sends STOP_SENDING for the rest.
    const chunk = Buffer.alloc(64 * 1024, 1)
    let writing = true
    const writer = (async () => {
      while (writing && request.writeState === 'open') {
        if (!request.write(chunk)) await Promise.race([once(request, 'drain'), writeFailed])
      }
    })()
    const inbound = await server.acceptStream()
    await once(inbound, 'readable')
    inbound.stopSending(9)
    inbound.end('early answer')
    const [error] = await writeFailed
    expect(error).toMatchObject({ code: QuicErrorCode.STREAM_RESET, errorCode: 9n, direction: 'write' })
    await ended
    writing = false
    await writer
    expect(Buffer.concat(received).toString()).toBe('early answer')
    expect(request.writeState).toBe('stopped')
    expect(request.readState).toBe('ended')
    await client.close()
    await listener.close()
  })

  it('should read on after stopSending() ends the readable side, with no push after the end', async () => {
    const { listener, client, server } = await pair()
    const outbound = await client.openStream()
    const inbound = (async () => await server.acceptStream())()
    // Data keeps arriving while the server stops reading: nothing may be pushed after its end.
    const body = Buffer.alloc(512 * 1024, 3)
    outbound.write(body)
    const stream = await inbound
    stream.stopSending(4)
    stream.resume()
    await once(stream, 'end')
    expect(stream.readState).toBe('stopped')
    const failed = await once(outbound, 'error')
    expect(failed[0]).toMatchObject({ errorCode: 4n, direction: 'write' })
    // The server's own direction is untouched.
    stream.end('still here')
    expect((await readAll(outbound)).toString()).toBe('still here')
    await client.close()
    await listener.close()
  })

  it('should end reading with the last bytes when they carry the FIN, not one native event later', async () => {
    // A handler that answers and then asks whether the peer is done (kad-dht's does) must find the
    // end known as soon as the last bytes are: MsQuic's PEER_SEND_SHUTDOWN follows them a moment
    // later, and on a loaded machine reached the next batch of events, after the handler's check.
    const readAfterLastBytes: string[] = []
    const original = StreamCore.prototype[kOnNativeEvent]
    const spy = vi.spyOn(StreamCore.prototype, kOnNativeEvent).mockImplementation(function (this: StreamCore, type, status, value, code, extra) {
      original.call(this, type, status, value, code, extra)
      // Ended, or still holding bytes for a reader who has not asked yet (the end follows them).
      if (type === Ev.StreamData && value === 1) readAfterLastBytes.push(this.read === 'open' && this.pendingBytes > 0 ? 'ended after what is pending' : this.read)
    })
    try {
      const { listener, client, server } = await pair()
      for (let i = 0; i < 5; i++) {
        const outbound = await client.openStream()
        outbound.end(`request ${i}`)  // the bytes and the FIN in one send, so one frame
        const inbound = await server.acceptStream()
        expect((await readAll(inbound)).toString()).toBe(`request ${i}`)
        inbound.end('answer')
        expect((await readAll(outbound)).toString()).toBe('answer')
      }
      // Five requests and five answers, each ended with its last bytes.
      expect(readAfterLastBytes).toHaveLength(10)
      expect(readAfterLastBytes.filter(read => read !== 'ended' && read !== 'ended after what is pending')).toEqual([])
      await client.close()
      await listener.close()
    } finally {
      spy.mockRestore()
    }
  })

  it('should tell acknowledged from queued', async () => {
    const { listener, client, server } = await pair()
    const outbound = await client.openStream()
    const body = Buffer.alloc(1024 * 1024, 2)
    const order: string[] = []
    outbound.on('finish', () => order.push('finish'))
    outbound.on('acknowledged', () => order.push('acknowledged'))
    outbound.end(body)
    const inbound = await server.acceptStream()
    expect((await readAll(inbound)).length).toBe(body.length)
    await outbound.acknowledged
    expect(order).toEqual(['finish', 'acknowledged'])
    expect(outbound.writeState).toBe('finished')
    inbound.end()
    await client.close()
    await listener.close()
  })

  it('should reject acknowledged when the peer stops the stream before reading it', async () => {
    const { listener, client, server } = await pair({ streamReceiveWindow: 65536, streamReceiveBudget: 65536 })
    const outbound = await client.openStream()
    outbound.on('error', () => {})
    outbound.end(Buffer.alloc(4 * 1024 * 1024))
    const acknowledged = outbound.acknowledged
    const inbound = await server.acceptStream()
    inbound.stopSending(11)
    await expect(acknowledged).rejects.toMatchObject({ errorCode: 11n, direction: 'write' })
    inbound.end()
    await client.close()
    await listener.close()
  })

  it('should report the real reason when end() meets a stream the peer abandoned', async () => {
    const { listener, client, server } = await pair()
    const outbound = await client.openStream()
    outbound.write('x')
    const inbound = await server.acceptStream()
    const failed = once(outbound, 'error')
    const closed = new Promise(resolve => outbound.once('close', resolve))
    inbound.destroy()  // aborts both directions with code 0
    const [error] = await failed as [Error]
    expect(error).toMatchObject({ code: QuicErrorCode.STREAM_RESET, errorCode: 0n })
    outbound.end('late')  // discarded: the failure was reported once
    await closed
    // The read side failed with the peer's reset; the write side is done (its STOP_SENDING may
    // still be on its way when 'close' comes, since the FIN was queued).
    expect(outbound.readState).toBe('reset')
    expect(['ending', 'stopped', 'reset']).toContain(outbound.writeState)
    await client.close()
    await listener.close()
  })
})

/** What one stream side did and saw in the randomised test. */
interface Outcome { errors: unknown[], closed: boolean }

function watch (stream: QuicStream): Outcome {
  const outcome: Outcome = { errors: [], closed: false }
  stream.on('error', error => outcome.errors.push(error))
  stream.on('close', () => { outcome.closed = true })
  stream.on('data', () => {})
  return outcome
}

describe('stream directions under random aborts', () => {
  it('should raise no uncaught error and give the real reason for 600 streams aborted at random points', async () => {
    const { listener, client, server } = await pair()
    let seed = 0x2545f491
    const random = (n: number): number => {
      seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5
      return (seed >>> 0) % n
    }
    const actions: Array<(stream: QuicStream) => void> = [
      stream => stream.reset(random(1000)),
      stream => stream.stopSending(random(1000)),
      stream => stream.destroy(),
      stream => stream.end(),
      stream => stream.write(Buffer.alloc(random(100_000))),
      stream => { stream.write('x'); stream.end() }
    ]
    const uncaught: unknown[] = []
    const onUncaught = (error: unknown): void => { uncaught.push(error) }
    process.on('uncaughtException', onUncaught)
    const outcomes: Outcome[] = []
    const serving = (async () => {
      for (let i = 0; i < 600; i++) {
        const stream = await server.acceptStream()
        outcomes.push(watch(stream))
        setTimeout(() => actions[random(actions.length)](stream), random(5))
        setTimeout(() => { if (!stream.destroyed) stream.destroy() }, 100 + random(50))
      }
    })()
    for (let i = 0; i < 600; i++) {
      const stream = await client.openStream()
      outcomes.push(watch(stream))
      stream.write(Buffer.alloc(random(50_000)))
      setTimeout(() => actions[random(actions.length)](stream), random(5))
      setTimeout(() => { if (!stream.destroyed) stream.destroy() }, 100 + random(50))
    }
    await serving
    const deadline = Date.now() + 20_000
    while (outcomes.some(outcome => !outcome.closed) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    process.off('uncaughtException', onUncaught)
    expect(uncaught).toEqual([])
    expect(outcomes.filter(outcome => !outcome.closed)).toHaveLength(0)
    const errors = outcomes.flatMap(outcome => outcome.errors)
    for (const error of errors) {
      // A stream reset or stopped by the peer, never a bare internal failure or a push after EOF.
      expect(error).toMatchObject({ code: QuicErrorCode.STREAM_RESET })
    }
    expect(outcomes.every(outcome => outcome.errors.length <= 1)).toBe(true)
    console.log(`random aborts: 1,200 stream sides, ${errors.length} errors, all ERR_QUIC_STREAM_RESET`)
    // 'close' can come before MsQuic's final event (a FIN still in flight): every native stream ends.
    await until(() => client.stats().openStreams === 0 && server.stats().openStreams === 0, 'every native stream to end')
    await client.close()
    await listener.close()
  })
})
