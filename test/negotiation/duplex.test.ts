/**
 * Negotiation over any Node Duplex (node:stream's duplexPair here): messages split anywhere, bytes
 * after the negotiation kept in order, nothing left behind (listeners, timers, abort listeners).
 */
import { describe, it, expect } from 'vitest'
import { getEventListeners } from 'node:events'
import { duplexPair, type Duplex } from 'node:stream'
import { QuicErrorCode, acceptProtocol, selectProtocol } from '../../src/index.js'
import { MULTISTREAM_PROTOCOL_ID, encodeMessage, encodeMessages } from '../../src/negotiation/index.js'
import { readAll } from '../helpers.js'
import { listeners, readExactly } from './helpers.js'

const timers = (): number => process.getActiveResourcesInfo().filter(resource => resource === 'Timeout').length

/** Writes `bytes` one byte per write. */
function trickle (stream: Duplex, bytes: Uint8Array): void {
  for (const byte of bytes) stream.write(Buffer.of(byte))
}

describe('negotiation over any Duplex', () => {
  it('should negotiate one byte at a time and leave nothing behind', async () => {
    const [dialer, listener] = duplexPair()
    const signal = new AbortController().signal
    const before = { dialer: listeners(dialer), listener: listeners(listener), timers: timers() }
    const accepting = acceptProtocol(listener, ['/b/1.0.0'], { signal })
    trickle(dialer, encodeMessages([MULTISTREAM_PROTOCOL_ID, '/a/1.0.0']))
    expect(await readExactly(dialer, encodeMessages([MULTISTREAM_PROTOCOL_ID, 'na']).length)).toEqual(Buffer.from(encodeMessages([MULTISTREAM_PROTOCOL_ID, 'na'])))
    trickle(dialer, encodeMessage('/b/1.0.0'))
    expect(await accepting).toBe('/b/1.0.0')
    expect(listeners(listener)).toEqual(before.listener)
    expect(timers()).toBe(before.timers)
    expect(getEventListeners(signal, 'abort')).toHaveLength(0)
  })

  it('should give the dialer what the listener sent with its answer, in order', async () => {
    const [dialer, listener] = duplexPair()
    const selecting = selectProtocol(dialer, '/b/1.0.0')
    // A listener may send its header unprompted, then the answer and its own first bytes at once.
    listener.write(encodeMessage(MULTISTREAM_PROTOCOL_ID))
    listener.end(Buffer.concat([encodeMessage('/b/1.0.0'), Buffer.from('first'), Buffer.from(' second')]))
    expect(await selecting).toBe('/b/1.0.0')
    expect((await readAll(dialer)).toString()).toBe('first second')
  })

  it('should hand over a stream that ended right after the proposal', async () => {
    const [dialer, listener] = duplexPair()
    dialer.end(encodeMessages([MULTISTREAM_PROTOCOL_ID, '/b/1.0.0']))
    expect(await acceptProtocol(listener, '/b/1.0.0')).toBe('/b/1.0.0')
    expect((await readAll(listener)).length).toBe(0)
  })

  it('should keep the dialer\'s bytes for the application when it waited for the answer', async () => {
    const [dialer, listener] = duplexPair()
    const accepting = acceptProtocol(listener, '/b/1.0.0')
    expect(await selectProtocol(dialer, '/b/1.0.0')).toBe('/b/1.0.0')
    dialer.end('request')
    expect(await accepting).toBe('/b/1.0.0')
    expect((await readAll(listener)).toString()).toBe('request')
  })

  it('should reset the stream when the signal was aborted already, lazily or not', async () => {
    for (const lazy of [false, true]) {
      const [dialer] = duplexPair()
      await expect(selectProtocol(dialer, '/b/1.0.0', { lazy, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: QuicErrorCode.ABORTED })
      expect(dialer.destroyed).toBe(true)
    }
  })
})
