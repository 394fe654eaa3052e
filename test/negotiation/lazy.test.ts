/**
 * Lazy selection (rust-libp2p's V1Lazy): the dialer sends data right after its single proposal;
 * the listener's answer is checked when it arrives, before the application reads anything. On a
 * QuicStream the stream core takes the answer out; any other Duplex is wrapped.
 */
import { describe, it, expect } from 'vitest'
import { duplexPair } from 'node:stream'
import { QuicErrorCode, NegotiationResetCode, acceptProtocol, selectProtocol, selectProtocolLazily } from '../../src/index.js'
import { MULTISTREAM_PROTOCOL_ID, encodeMessage, encodeMessages } from '../../src/negotiation/index.js'
import { readAll, until } from '../helpers.js'
import { closeEvent, listeners, peerReset, useQuicPair, readExactly, scriptedPeer } from './helpers.js'

const peers = useQuicPair()

/** Everything a stream emits as 'data' (attached at once, so it would see negotiation bytes too). */
function collect (stream: NodeJS.ReadableStream): Buffer[] {
  const chunks: Buffer[] = []
  stream.on('data', (chunk: Buffer) => chunks.push(chunk))
  return chunks
}

describe('lazy selection over QUIC', () => {
  it('should send data with the proposal and hand both sides the protocol\'s bytes intact', async () => {
    const stream = await peers.client.openStream()
    const before = listeners(stream)
    expect(await selectProtocol(stream, '/echo/1.0.0', { lazy: true })).toBe('/echo/1.0.0')
    // Resolved before any answer: nothing of ours waits on the stream, and the data goes out now.
    expect(listeners(stream)).toEqual(before)
    stream.write('hello')
    const reply = readAll(stream)

    const inbound = await peers.server.acceptStream()
    expect(await acceptProtocol(inbound, ['/other/1.0.0', '/echo/1.0.0'], { lazy: true })).toBe('/echo/1.0.0')
    expect((await readExactly(inbound, 5)).toString()).toBe('hello')
    inbound.end('world')

    expect((await reply).toString()).toBe('world')
    expect(Object.hasOwn(stream, 'push')).toBe(false)
    stream.end()
  })

  it('should fail the stream when the listener answers na', async () => {
    const stream = await peers.client.openStream()
    const errored = new Promise<Error>(resolve => stream.once('error', resolve))
    const closed = closeEvent(stream)
    const seen = collect(stream)
    expect(await selectProtocol(stream, '/echo/1.0.0', { lazy: true })).toBe('/echo/1.0.0')
    stream.write('hello')

    const raw = await peers.server.acceptStream()
    const reset = peerReset(raw)
    const received = scriptedPeer(raw, message => message === MULTISTREAM_PROTOCOL_ID ? encodeMessages([MULTISTREAM_PROTOCOL_ID, 'na']) : undefined)

    expect(await errored).toMatchObject({ name: 'NegotiationError', code: QuicErrorCode.NEGOTIATION_FAILED, phase: 'peer' })
    await closed
    expect(stream.destroyed).toBe(true)
    expect(seen).toEqual([]) // the application read nothing of the negotiation
    expect((await reset).errorCode).toBe(NegotiationResetCode.PROTOCOL_NEGOTIATION_FAILED)
    expect(received.slice(0, 2)).toEqual([MULTISTREAM_PROTOCOL_ID, '/echo/1.0.0'])
  })

  it('should be refused by a listener told not to be lazy (lazy: false)', async () => {
    const stream = await peers.client.openStream()
    stream.on('error', () => {})
    await selectProtocol(stream, '/echo/1.0.0', { lazy: true })
    stream.write('hello')
    const inbound = await peers.server.acceptStream()
    // Only data already there when the proposal is read can be seen as early: wait for all of it.
    const sent = encodeMessages([MULTISTREAM_PROTOCOL_ID, '/echo/1.0.0']).length + 'hello'.length
    inbound.read(0)
    await until(() => inbound.readableLength >= sent, 'the proposal and the data')
    await expect(acceptProtocol(inbound, ['/echo/1.0.0'], { lazy: false })).rejects.toMatchObject({ code: QuicErrorCode.NEGOTIATION_PROTOCOL })
    expect(inbound.destroyed).toBe(true)
  })
})

describe('lazy selection over any Duplex', () => {
  it('should take the answer out before the wrapper\'s readers see it, even byte by byte, and leave the stream unpatched', async () => {
    const [dialer, listener] = duplexPair()
    const stream = await selectProtocolLazily(dialer, '/chat/1.0.0')
    const seen = collect(stream)
    stream.write('hi')
    const answer = Buffer.concat([encodeMessages([MULTISTREAM_PROTOCOL_ID, '/chat/1.0.0']), Buffer.from('there')])
    for (const byte of answer) listener.write(Buffer.of(byte))
    await new Promise(resolve => setImmediate(resolve))
    expect(Buffer.concat(seen).toString()).toBe('there')
    expect(Buffer.from(listener.read() as Buffer)).toEqual(Buffer.concat([encodeMessages([MULTISTREAM_PROTOCOL_ID, '/chat/1.0.0']), Buffer.from('hi')]))
    expect(Object.hasOwn(dialer, 'push')).toBe(false)
  })

  it('should fail the stream on a refusal, a malformed answer, or none before the end', async () => {
    const answers: Array<[Uint8Array, string]> = [
      [encodeMessages([MULTISTREAM_PROTOCOL_ID, 'na']), QuicErrorCode.NEGOTIATION_FAILED],
      [encodeMessages(['/multistream/2.0.0']), QuicErrorCode.NEGOTIATION_PROTOCOL],
      [encodeMessages([MULTISTREAM_PROTOCOL_ID, '/other']), QuicErrorCode.NEGOTIATION_PROTOCOL],
      [encodeMessage(MULTISTREAM_PROTOCOL_ID), QuicErrorCode.NEGOTIATION_PROTOCOL]
    ]
    for (const [answer, code] of answers) {
      const [dialer, listener] = duplexPair()
      const stream = await selectProtocolLazily(dialer, '/chat/1.0.0')
      const errored = new Promise<Error>(resolve => stream.once('error', resolve))
      const seen = collect(stream)
      listener.end(answer)
      expect(await errored).toMatchObject({ code })
      expect(stream.destroyed).toBe(true)
      expect(dialer.destroyed).toBe(true)
      expect(seen).toEqual([])
    }
  })

  it('should carry a whole exchange through the wrapper: the data, both ends, then the close', async () => {
    const [dialer, listener] = duplexPair()
    const stream = await selectProtocolLazily(dialer, '/echo/1.0.0')
    const closed = new Promise(resolve => stream.once('close', resolve))
    stream.end('ping')
    expect(await acceptProtocol(listener, ['/echo/1.0.0'])).toBe('/echo/1.0.0')
    listener.end(await readAll(listener))
    expect((await readAll(stream)).toString()).toBe('ping')
    await closed
    expect(dialer.destroyed).toBe(true)
  })

  it('should negotiate in full with selectProtocol({ lazy: true }) on a Duplex that is not a QuicStream', async () => {
    const [dialer, listener] = duplexPair()
    const [selected, accepted] = await Promise.all([
      selectProtocol(dialer, '/b', { lazy: true }),
      acceptProtocol(listener, ['/b'])
    ])
    expect([selected, accepted]).toEqual(['/b', '/b'])
    expect(Object.hasOwn(dialer, 'push')).toBe(false)
  })

  it('should negotiate fully with several protocols, lazy or not', async () => {
    const [dialer, listener] = duplexPair()
    const [selected, accepted] = await Promise.all([
      selectProtocol(dialer, ['/a', '/b'], { lazy: true }),
      acceptProtocol(listener, ['/b'], { lazy: true })
    ])
    expect([selected, accepted]).toEqual(['/b', '/b'])
  })

  it('should accept a lazy dialer by default, as go-libp2p sends when it knows the protocol', async () => {
    const [dialer, listener] = duplexPair()
    dialer.write(Buffer.concat([encodeMessages([MULTISTREAM_PROTOCOL_ID, '/b']), Buffer.from('data')]))
    expect(await acceptProtocol(listener, ['/b'])).toBe('/b')
    expect(String(listener.read())).toBe('data')
  })

  it('should still refuse data after a refused proposal in a lazy listener', async () => {
    const [dialer, listener] = duplexPair()
    const accepting = acceptProtocol(listener, ['/b'], { lazy: true })
    dialer.write(Buffer.concat([encodeMessages([MULTISTREAM_PROTOCOL_ID, '/a']), Buffer.from('data')]))
    await expect(accepting).rejects.toMatchObject({ code: QuicErrorCode.NEGOTIATION_PROTOCOL })
    expect(listener.destroyed).toBe(true)
  })
})
