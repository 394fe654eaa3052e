/**
 * The dialer's lazy check (rust-libp2p's V1Lazy): selectProtocol() has already resolved, so the
 * listener's header and answer are checked as they arrive, before the application reads anything.
 * On a QuicStream the check is a prefix reader on the stream core's data path; other Duplexes
 * (which have no such path) are read through their push().
 */
import type { Duplex } from 'node:stream'
import { QuicStream } from '../quic/stream.js'
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
  if (stream instanceof QuicStream) {
    verifyPrefix(stream, protocol)
    return
  }
  const decoder = new MessageDecoder()
  const ownPush = Object.hasOwn(stream, 'push')
  const push = stream.push
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
  const answer = answerReader(decoder, protocol)
  const answered = (): boolean => answer()

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

// A reader of the listener's header and answer: true once the answer is in; throws a
// NegotiationError for a refusal or a malformed answer.
function answerReader (decoder: MessageDecoder, protocol: string): () => boolean {
  let header = false
  return () => {
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
}

// On a QuicStream: the core hands every received byte to this reader first, until the answer is
// in; the application sees only what follows it.
function verifyPrefix (stream: QuicStream, protocol: string): void {
  const decoder = new MessageDecoder()
  const answered = answerReader(decoder, protocol)
  const fail = (error: unknown): never => {
    // Out of the core's delivery: the reset and the 'error' come on the next tick.
    process.nextTick(() => { resetStream(stream, error, true) })
    throw error
  }
  stream.readPrefix(chunk => {
    if (chunk === null) return fail(protocolError(`The peer ended the stream before answering the proposal of ${protocol}`))
    decoder.push(chunk)
    let done: boolean
    try {
      done = answered()
    } catch (error) {
      return fail(error)
    }
    if (!done) return undefined
    const rest = decoder.take()
    return Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength)
  })
}
