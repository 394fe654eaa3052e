/**
 * Interoperability with js-libp2p's own multistream-select (@libp2p/multistream-select 7.0.x, as
 * libp2p 3.3.11 uses it), both ways, on real QUIC streams over loopback.
 */
import { describe, it, expect } from 'vitest'
import * as mss from '@libp2p/multistream-select'
import { QuicErrorCode, acceptProtocol, selectProtocol } from '../../src/index.js'
import { MULTISTREAM_PROTOCOL_ID, encodeMessage, encodeMessages, encodeProtocolList } from '../../src/negotiation/index.js'
import { Libp2pQuicStream, hex, listeners, useQuicPair, readExactly, readLibp2p } from './helpers.js'

const peers = useQuicPair()

describe('interop with @libp2p/multistream-select', () => {
  it('should select with ours against their handle, falling back after na', async () => {
    const stream = await peers.client.openStream()
    const before = listeners(stream)
    const selecting = selectProtocol(stream, ['/unknown/1.0.0', '/echo/1.0.0'])
    const theirs = new Libp2pQuicStream(await peers.server.acceptStream(), 'inbound')
    const [ours, handled] = await Promise.all([selecting, mss.handle(theirs, ['/other/1.0.0', '/echo/1.0.0'])])
    expect(ours).toBe('/echo/1.0.0')
    expect(handled).toBe('/echo/1.0.0')
    expect(listeners(stream)).toEqual(before)

    // The protocol's own bytes flow both ways after negotiation, intact and in order.
    const received = readLibp2p(theirs, 5)
    stream.write('hello')
    expect((await received).toString()).toBe('hello')
    theirs.send(Buffer.from('world'))
    expect((await readExactly(stream, 5)).toString()).toBe('world')
    stream.destroy()
  })

  it('should handle with ours against their select, falling back after na', async () => {
    const theirs = new Libp2pQuicStream(await peers.client.openStream(), 'outbound')
    const selecting = mss.select(theirs, ['/unknown/1.0.0', '/echo/1.0.0'])
    const stream = await peers.server.acceptStream()
    const before = listeners(stream)
    const [selected, ours] = await Promise.all([selecting, acceptProtocol(stream, ['/other/1.0.0', '/echo/1.0.0'])])
    expect(selected).toBe('/echo/1.0.0')
    expect(ours).toBe('/echo/1.0.0')
    expect(listeners(stream)).toEqual(before)

    theirs.send(Buffer.from('hello'))
    expect((await readExactly(stream, 5)).toString()).toBe('hello')
    const received = readLibp2p(theirs, 5)
    stream.write('world')
    expect((await received).toString()).toBe('world')
    stream.destroy()
  })

  it('should send exactly the bytes their select sends, and they exactly ours', async () => {
    // Their dialer's first flight, read raw: the header and the first proposal, in one message each.
    const theirs = new Libp2pQuicStream(await peers.client.openStream(), 'outbound')
    const selecting = mss.select(theirs, ['/echo/1.0.0'])
    selecting.catch(() => {})
    const raw = await peers.server.acceptStream()
    const flight = encodeMessages([MULTISTREAM_PROTOCOL_ID, '/echo/1.0.0'])
    expect(hex(await readExactly(raw, flight.length))).toBe('13' + hex(Buffer.from('/multistream/1.0.0\n')) + '0c' + hex(Buffer.from('/echo/1.0.0\n')))
    // Our answer, written raw, is what their dialer takes as acceptance.
    raw.write(flight)
    expect(await selecting).toBe('/echo/1.0.0')
    raw.destroy()
    theirs.abort(new Error('done'))
  })

  it('should answer ls exactly as their handle does', async () => {
    const protocols = ['/echo/1.0.0', '/ipfs/kad/1.0.0', '/' + 'x'.repeat(200)]
    const expected = Buffer.concat([encodeMessage(MULTISTREAM_PROTOCOL_ID), encodeProtocolList(protocols)])
    const request = encodeMessages([MULTISTREAM_PROTOCOL_ID, 'ls'])

    // Theirs, over QUIC: a raw dialer asks for ls, then proposes so that their handle completes.
    const toTheirs = await peers.client.openStream()
    toTheirs.write(request)
    const theirs = new Libp2pQuicStream(await peers.server.acceptStream(), 'inbound')
    const handled = mss.handle(theirs, protocols)
    const theirReply = await readExactly(toTheirs, expected.length)
    toTheirs.write(encodeMessage('/echo/1.0.0'))
    expect(await handled).toBe('/echo/1.0.0')

    // Ours, the same way.
    const toOurs = await peers.client.openStream()
    toOurs.write(request)
    const stream = await peers.server.acceptStream()
    const accepting = acceptProtocol(stream, protocols)
    const ourReply = await readExactly(toOurs, expected.length)
    toOurs.write(encodeMessage('/ipfs/kad/1.0.0'))
    expect(await accepting).toBe('/ipfs/kad/1.0.0')

    expect(hex(theirReply)).toBe(hex(expected))
    expect(hex(ourReply)).toBe(hex(expected))
    for (const s of [toTheirs, toOurs, stream]) s.destroy()
    theirs.abort(new Error('done'))
  })

  it('should fail both ways when no protocol is common', async () => {
    // Ours selecting: their handle answers na to each; ours gives up and resets the stream.
    const stream = await peers.client.openStream()
    const selecting = selectProtocol(stream, ['/a/1.0.0', '/b/1.0.0'])
    const theirs = new Libp2pQuicStream(await peers.server.acceptStream(), 'inbound')
    const handled = mss.handle(theirs, ['/c/1.0.0'])
    handled.catch(() => {})
    await expect(selecting).rejects.toMatchObject({ code: QuicErrorCode.NEGOTIATION_FAILED })
    expect(stream.destroyed).toBe(true)
    await expect(handled).rejects.toThrow()

    // Theirs selecting: ours answers na to each; they give up and abort, which ours reports.
    const dialer = new Libp2pQuicStream(await peers.client.openStream(), 'outbound')
    const theirSelect = mss.select(dialer, ['/a/1.0.0', '/b/1.0.0'])
    const inbound = await peers.server.acceptStream()
    const accepting = acceptProtocol(inbound, ['/c/1.0.0'])
    await expect(theirSelect).rejects.toMatchObject({ name: 'UnsupportedProtocolError' })
    dialer.abort(new Error('unsupported'))
    await expect(accepting).rejects.toMatchObject({ code: QuicErrorCode.NEGOTIATION_FAILED })
    expect(inbound.destroyed).toBe(true)
  })
})
