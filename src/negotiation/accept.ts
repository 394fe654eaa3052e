/**
 * The listener's side of multistream-select 1.0: answer the dialer's proposals until it proposes
 * a protocol we speak.
 */
import type { Duplex } from 'node:stream'
import { invalidArgValue } from '../errors.js'
import { LS, MULTISTREAM_PROTOCOL_ID, NA, checkProtocols, encodeMessage, encodeProtocolList } from './message.js'
import { NegotiationSession, checkStream, noCommonProtocol, protocolError, unexpected, type NegotiationOptions } from './session.js'

/**
 * The default cap on the dialer's messages after its header (proposals and `ls`): a dialer
 * refused with `na` forever is cut off rather than held. js-libp2p's dialer tries each of its
 * protocols once, and real lists are short.
 */
export const MAX_PROPOSALS = 32

/** Options for {@link acceptProtocol}. */
export interface AcceptProtocolOptions extends NegotiationOptions {
  /**
   * Accept data right after the proposal that is accepted, as lazy dialers send it (go-libp2p when
   * it already knows the peer speaks the protocol, rust-libp2p's V1Lazy, `lazy` in
   * {@link selectProtocol}): it stays in the stream for the application. A listener cannot know
   * which dialers are lazy, so this is the default. `false` refuses them: any byte after a
   * proposal, before our answer, is then `ERR_NEGOTIATION_PROTOCOL`.
   */
  lazy?: boolean
  /**
   * The most proposals (and `ls` requests) to take: the last one, unless accepted, fails the
   * negotiation instead of being answered. Default 32 (MAX_PROPOSALS).
   */
  maxProposals?: number
}

/**
 * Negotiates a protocol as the listener: reads the dialer's header, answers each proposal with an
 * echo (accepted) or `na`, answers `ls` with `protocols`, and resolves with the accepted protocol.
 * Our header goes out with the first answer, or alone at once if the dialer waits for it. The
 * stream then carries that protocol. Call it before anything reads the stream.
 *
 * On failure the promise rejects with a {@link NegotiationError} (`ERR_NEGOTIATION_FAILED` after
 * `maxProposals` refusals or when the stream fails, `ERR_NEGOTIATION_PROTOCOL`,
 * `ERR_NEGOTIATION_TIMEOUT`, `ERR_QUIC_ABORTED`) and the stream is reset with
 * `NegotiationResetCode` and destroyed. Bad arguments reject with a TypeError or RangeError and
 * leave the stream untouched.
 *
 * @param protocols - The protocols we speak; each 1 to 1,024 UTF-8 bytes.
 */
export async function acceptProtocol (stream: Duplex, protocols: string | readonly string[], options: AcceptProtocolOptions = {}): Promise<string> {
  const list = checkProtocols(protocols)
  const maxProposals = options.maxProposals ?? MAX_PROPOSALS
  if (!Number.isSafeInteger(maxProposals) || maxProposals < 1) throw invalidArgValue('maxProposals', 'must be a positive integer', maxProposals, true)
  checkStream(stream, options, true)
  const session = new NegotiationSession(stream, options)
  try {
    const header = await session.read()
    if (header !== MULTISTREAM_PROTOCOL_ID) throw unexpected(`expected the header ${MULTISTREAM_PROTOCOL_ID}`, header)
    // Our header rides with the first answer, unless the dialer waits for it before proposing.
    let headerSent = !session.hasMore
    if (headerSent) session.write(encodeMessage(MULTISTREAM_PROTOCOL_ID))
    for (let proposals = 1; ; proposals++) {
      const message = await session.read()
      if (message === MULTISTREAM_PROTOCOL_ID) throw unexpected('expected a proposal', message)
      const accepted = list.includes(message)
      // A dialer that did not wait for our answer; only a lazy one, after the accepted proposal.
      if (session.hasMore && !(accepted && options.lazy !== false)) {
        throw protocolError(`The peer sent data after proposing ${JSON.stringify(message)}, before our answer`)
      }
      // The last refusal is the reset itself: an na written now would be discarded by it.
      if (!accepted && proposals >= maxProposals) throw noCommonProtocol(`The peer proposed ${maxProposals} protocols without agreement`)
      const answer = message === LS ? encodeProtocolList(list) : encodeMessage(accepted ? message : NA)
      session.write(headerSent ? answer : Buffer.concat([encodeMessage(MULTISTREAM_PROTOCOL_ID), answer]))
      headerSent = true
      if (accepted) {
        session.finish()
        return message
      }
    }
  } catch (error) {
    throw session.fail(error)
  }
}
