/**
 * The dialer's lazy check (rust-libp2p's V1Lazy): selectProtocol() has already resolved, so the
 * listener's header and answer are checked as they arrive, before the application reads anything.
 */
import type { Duplex } from 'node:stream'
import { MULTISTREAM_PROTOCOL_ID, NA, MessageDecoder } from './message.js'
import { noCommonProtocol, protocolError, resetStream, unexpected } from './session.js'

const EMPTY = new Uint8Array(0)

/**
 * Takes the listener's header and answer out of `stream` where its implementation push()es
 * received bytes, before they reach the readable buffer. Reading them there instead would race
 * the application, whose 'data' listeners would see them; every node:stream implementation (a
 * QuicStream among them) delivers received bytes through push(). The original push() is back once
 * the answer is in; a refusal or a malformed answer destroys the stream with the error.
 */
export function verifyLazily (stream: Duplex, protocol: string): void {
  const decoder = new MessageDecoder()
  const ownPush = Object.hasOwn(stream, 'push')
  const push = stream.push
  let header = false
  let failed = false

  const restore = (): void => {
    if (ownPush) stream.push = push
    else delete (stream as { push?: unknown }).push
  }
  const fail = (error: unknown): boolean => {
    failed = true
    // Out of the implementation's push() call: it may still be running.
    process.nextTick(() => {
      resetStream(stream, error, true)
      restore()
    })
    return false
  }
  // True once the answer is in; throws a NegotiationError for a refusal or a malformed answer.
  const answered = (): boolean => {
    for (let message = decoder.next(); message !== undefined; message = decoder.next()) {
      if (!header) {
        if (message !== MULTISTREAM_PROTOCOL_ID) throw unexpected(`expected the header ${MULTISTREAM_PROTOCOL_ID}`, message)
        header = true
      } else if (message === protocol) {
        return true
      } else if (message === NA) {
        throw noCommonProtocol(`The peer does not support ${protocol}`)
      } else {
        throw unexpected(`expected ${JSON.stringify(protocol)} or na`, message)
      }
    }
    return false
  }

  // Bytes already received (a listener may send its header unprompted) come first.
  if (stream.readableLength > 0) {
    decoder.push(stream.read() as Uint8Array)
    try {
      if (answered()) {
        const rest = decoder.take()
        if (rest.length > 0) stream.unshift(rest)
        return
      }
    } catch (error) {
      fail(error)
      return
    }
  }

  stream.push = function (chunk: unknown, encoding?: BufferEncoding): boolean {
    if (failed) return false
    if (chunk === null) return fail(protocolError(`The peer ended the stream before answering the proposal of ${protocol}`))
    decoder.push(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk as Uint8Array)
    let done: boolean
    try {
      done = answered()
    } catch (error) {
      return fail(error)
    }
    if (!done) {
      // Nothing for the reader yet. The empty push ends Node's pending read, but being empty it
      // does not start another, which some streams wait for before delivering more: ask for it.
      process.nextTick(() => { if (!stream.destroyed) stream.read(0) })
      return push.call(this, EMPTY)
    }
    restore()
    return push.call(this, decoder.take())
  }
}
