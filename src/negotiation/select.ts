/**
 * The dialer's side of multistream-select 1.0: propose protocols in order until the listener
 * echoes one.
 */
import type { Duplex } from 'node:stream'
import { MULTISTREAM_PROTOCOL_ID, NA, checkProtocols, encodeMessage, encodeMessages } from './message.js'
import { verifyLazily } from './lazy.js'
import { NegotiationSession, abortError, checkStream, noCommonProtocol, protocolError, resetStream, streamClosed, unexpected, type NegotiationOptions } from './session.js'

/** Options for {@link selectProtocol}. */
export interface SelectProtocolOptions extends NegotiationOptions {
  /**
   * With a single protocol: resolve as soon as the proposal is written, so the application can
   * send data in the same flight (rust-libp2p's V1Lazy). The listener's answer is checked when it
   * arrives, before the application reads anything; a refusal (`na`) or a malformed answer then
   * destroys the stream with the error. The listener must accept data right after the proposal
   * (`lazy` in {@link acceptProtocol}). Ignored with several protocols. Default false.
   */
  lazy?: boolean
}

/**
 * Negotiates a protocol as the dialer: sends the header and the first proposal in one write, then
 * proposes the next protocol after each `na`. Resolves with the protocol the listener accepted;
 * the stream then carries that protocol, starting with any bytes the listener sent after its
 * answer. Call it before anything reads the stream (lazily, reading may start before).
 *
 * On failure the promise rejects with a {@link NegotiationError} (`ERR_NEGOTIATION_FAILED` when
 * the listener refused every protocol, `ERR_NEGOTIATION_PROTOCOL`, `ERR_NEGOTIATION_TIMEOUT`,
 * `ERR_QUIC_ABORTED`) and the stream is reset with `NegotiationResetCode` and destroyed.
 * Bad arguments reject with a TypeError or RangeError and leave the stream untouched.
 *
 * @param protocols - In order of preference; each 1 to 1,024 UTF-8 bytes.
 */
export async function selectProtocol (stream: Duplex, protocols: string | readonly string[], options: SelectProtocolOptions = {}): Promise<string> {
  const list = checkProtocols(protocols)
  const lazy = options.lazy === true && list.length === 1
  // Lazily, the answer is taken out before any reader sees it: the stream may be read already.
  checkStream(stream, options, !lazy)
  if (lazy) {
    if (stream.destroyed) throw streamClosed(stream)
    if (options.signal?.aborted === true) {
      const error = abortError(options.signal)
      resetStream(stream, error)
      throw error
    }
    stream.write(encodeMessages([MULTISTREAM_PROTOCOL_ID, list[0]]))
    verifyLazily(stream, list[0])
    return list[0]
  }
  const session = new NegotiationSession(stream, options)
  try {
    session.write(encodeMessages([MULTISTREAM_PROTOCOL_ID, list[0]]))
    const header = await session.read()
    if (header !== MULTISTREAM_PROTOCOL_ID) throw unexpected(`expected the header ${MULTISTREAM_PROTOCOL_ID}`, header)
    for (let i = 0; i < list.length; i++) {
      if (i > 0) session.write(encodeMessage(list[i]))
      const answer = await session.read()
      if (answer === list[i]) {
        session.finish()
        return answer
      }
      if (answer !== NA) throw unexpected(`expected ${JSON.stringify(list[i])} or na`, answer)
      // Only the echo may be followed by data (the protocol's own): after na the listener waits.
      if (session.hasMore) throw protocolError('The peer sent data after na, before the next proposal')
    }
    throw noCommonProtocol(`The peer supports none of the protocols proposed: ${list.join(', ')}`)
  } catch (error) {
    throw session.fail(error)
  }
}
