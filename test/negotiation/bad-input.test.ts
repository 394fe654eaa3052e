/**
 * Bad peers on real QUIC streams: each ends the negotiation with a clear error, the stream reset
 * with 0x1001 (the peer sees it) and destroyed, and none of our listeners left on it.
 */
import { describe, it, expect } from 'vitest'
import { getEventListeners } from 'node:events'
import { QuicErrorCode, NegotiationResetCode, acceptProtocol, selectProtocol, type QuicStream, type AcceptProtocolOptions, type SelectProtocolOptions } from '../../src/index.js'
import { MAX_PROPOSALS, MULTISTREAM_PROTOCOL_ID, encodeMessage, encodeMessages } from '../../src/negotiation/index.js'
import { NO_LISTENERS, closeEvent, listeners, peerReset, useQuicPair, scriptedPeer } from './helpers.js'

const peers = useQuicPair()

const header = encodeMessage(MULTISTREAM_PROTOCOL_ID)
const bytes = (...parts: Array<Uint8Array | number[] | string>): Buffer =>
  Buffer.concat(parts.map(part => typeof part === 'string' ? Buffer.from(part) : Buffer.from(part)))
const tooLong = encodeMessage('/' + 'x'.repeat(1024))
const malformed: Array<[string, Uint8Array]> = [
  ['a protocol id over 1,024 bytes', bytes(header, tooLong)],
  ['an invalid varint', bytes(header, [0x80, 0x80, 0x80, 0x01])],
  ['a missing newline', bytes(header, [0x04], '/abc')],
  ['invalid UTF-8', bytes(header, [0x03, 0xc3, 0x28, 0x0a])],
  ['an empty message', bytes(header, [0x00])],
  ['another header', encodeMessage('/multistream/2.0.0')]
]

/**
 * Waits for the stream's 'close', then checks it was destroyed and reset (the peer saw the code)
 * and has no listener left: ours are gone, and the connection's went with the 'close'.
 */
async function expectReset (stream: QuicStream, closed: Promise<void>, peer: Promise<{ errorCode?: number | bigint }>): Promise<void> {
  await closed
  expect(stream.destroyed).toBe(true)
  expect(listeners(stream)).toEqual(NO_LISTENERS)
  expect((await peer).errorCode).toBe(NegotiationResetCode.PROTOCOL_NEGOTIATION_FAILED)
}

/** A raw dialer (`dial` writes its bytes) against our acceptProtocol; returns the rejection. */
async function accepting (dial: (raw: QuicStream) => void, options: AcceptProtocolOptions = {}): Promise<unknown> {
  const raw = await peers.client.openStream()
  const reset = peerReset(raw)
  dial(raw)
  const stream = await peers.server.acceptStream()
  const closed = closeEvent(stream)
  const error = await acceptProtocol(stream, ['/echo/1.0.0'], options).then(() => undefined, (e: unknown) => e)
  await expectReset(stream, closed, reset)
  return error
}

/** Our selectProtocol against a raw listener (`listen` answers); returns the rejection. */
async function selecting (listen: (raw: QuicStream) => void, options: SelectProtocolOptions = {}, protocols = ['/echo/1.0.0']): Promise<unknown> {
  const stream = await peers.client.openStream()
  const closed = closeEvent(stream)
  const result = selectProtocol(stream, protocols, options).then(() => undefined, (e: unknown) => e)
  const raw = await peers.server.acceptStream()
  const reset = peerReset(raw)
  listen(raw)
  const error = await result
  await expectReset(stream, closed, reset)
  return error
}

const code = (value: string): object => ({ name: 'NegotiationError', code: value, phase: 'peer' })

describe('bad input to acceptProtocol', () => {
  for (const [what, sent] of malformed) {
    it(`should fail on ${what}`, async () => {
      expect(await accepting(raw => raw.write(sent))).toMatchObject(code(QuicErrorCode.NEGOTIATION_PROTOCOL))
    })
  }

  it('should fail on data sent after a proposal, before the answer (lazy: false)', async () => {
    const early = await accepting(raw => raw.write(bytes(encodeMessages([MULTISTREAM_PROTOCOL_ID, '/echo/1.0.0']), 'data')), { lazy: false })
    expect(early).toMatchObject({ ...code(QuicErrorCode.NEGOTIATION_PROTOCOL), message: expect.stringContaining('before our answer') })
    const pipelined = await accepting(raw => raw.write(encodeMessages([MULTISTREAM_PROTOCOL_ID, '/other/1.0.0', '/echo/1.0.0'])))
    expect(pipelined).toMatchObject(code(QuicErrorCode.NEGOTIATION_PROTOCOL))
  })

  it('should fail when the dialer ends the stream mid-negotiation', async () => {
    expect(await accepting(raw => raw.end(header))).toMatchObject(code(QuicErrorCode.NEGOTIATION_PROTOCOL))
    expect(await accepting(raw => raw.end(bytes(header, [0x05], '/ab')))).toMatchObject({
      code: QuicErrorCode.NEGOTIATION_PROTOCOL, message: expect.stringContaining('in the middle of a message')
    })
  })

  it('should time out on a dialer that goes quiet, and honour its signal', async () => {
    expect(await accepting(raw => raw.write(header), { timeout: 50 })).toMatchObject(code(QuicErrorCode.NEGOTIATION_TIMEOUT))
    expect(await accepting(raw => raw.write(header), { signal: AbortSignal.timeout(50) })).toMatchObject(code(QuicErrorCode.NEGOTIATION_TIMEOUT))
    const controller = new AbortController()
    const aborted = await accepting(raw => {
      raw.write(header)
      setTimeout(() => controller.abort(new Error('shutting down')), 20)
    }, { signal: controller.signal })
    expect(aborted).toMatchObject({ ...code(QuicErrorCode.ABORTED), cause: { message: 'shutting down' } })
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
  })

  it(`should cut off a dialer refused with na ${MAX_PROPOSALS} times`, async () => {
    let answers: string[] = []
    const error = await accepting(raw => {
      raw.write(encodeMessages([MULTISTREAM_PROTOCOL_ID, '/p/0']))
      answers = scriptedPeer(raw, (message, index) => message === 'na' ? encodeMessage(`/p/${index}`) : undefined)
    })
    expect(error).toMatchObject({ ...code(QuicErrorCode.NEGOTIATION_FAILED), message: expect.stringContaining(`${MAX_PROPOSALS} protocols`) })
    expect(answers).toEqual([MULTISTREAM_PROTOCOL_ID, ...Array(MAX_PROPOSALS - 1).fill('na')])
  })

  it('should report a dialer that resets the stream', async () => {
    const raw = await peers.client.openStream()
    raw.on('error', () => {})
    raw.write(header)
    const stream = await peers.server.acceptStream()
    const closed = closeEvent(stream)
    const accepting = acceptProtocol(stream, ['/echo/1.0.0'])
    raw.reset(7)
    await expect(accepting).rejects.toMatchObject({ ...code(QuicErrorCode.NEGOTIATION_FAILED), errorCode: 7n, cause: { code: QuicErrorCode.STREAM_RESET } })
    await closed
    expect(stream.destroyed).toBe(true)
    expect(listeners(stream)).toEqual(NO_LISTENERS)
  })
})

describe('bad input to selectProtocol', () => {
  for (const [what, sent] of malformed) {
    it(`should fail on ${what}`, async () => {
      expect(await selecting(raw => raw.write(sent))).toMatchObject(code(QuicErrorCode.NEGOTIATION_PROTOCOL))
    })
  }

  it('should fail on an answer that is neither the proposal nor na', async () => {
    const error = await selecting(raw => raw.write(encodeMessages([MULTISTREAM_PROTOCOL_ID, '/other/1.0.0'])))
    expect(error).toMatchObject({ ...code(QuicErrorCode.NEGOTIATION_PROTOCOL), message: expect.stringContaining('"/other/1.0.0"') })
  })

  it('should fail on data after na, and on a listener that ends the stream', async () => {
    expect(await selecting(raw => raw.write(bytes(encodeMessages([MULTISTREAM_PROTOCOL_ID, 'na']), 'data')), {}, ['/a', '/b']))
      .toMatchObject(code(QuicErrorCode.NEGOTIATION_PROTOCOL))
    expect(await selecting(raw => raw.end(header))).toMatchObject(code(QuicErrorCode.NEGOTIATION_PROTOCOL))
  })

  it('should time out on a listener that never answers', async () => {
    expect(await selecting(() => {}, { timeout: 50 })).toMatchObject(code(QuicErrorCode.NEGOTIATION_TIMEOUT))
  })

  it('should give up on a listener that answers na to every proposal', async () => {
    let received: string[] = []
    const error = await selecting(raw => {
      received = scriptedPeer(raw, message => message === MULTISTREAM_PROTOCOL_ID ? header : encodeMessage('na'))
    }, {}, ['/a', '/b', '/c'])
    expect(error).toMatchObject({ ...code(QuicErrorCode.NEGOTIATION_FAILED), message: expect.stringContaining('/a, /b, /c') })
    expect(received).toEqual([MULTISTREAM_PROTOCOL_ID, '/a', '/b', '/c'])
  })
})

describe('misuse', () => {
  it('should reject bad arguments and leave the stream untouched', async () => {
    const stream = await peers.client.openStream()
    await expect(selectProtocol(stream, [])).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(selectProtocol(stream, '/a', { timeout: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(acceptProtocol(stream, '/a', { maxProposals: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    stream.on('data', () => {})
    await expect(acceptProtocol(stream, '/a')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('flowing') })
    expect(stream.destroyed).toBe(false)
    stream.destroy()
  })
})
