/**
 * The listener's side of multistream-select 1.0 over a Duplex: answer the dialer's proposals
 * until it proposes a protocol we speak.
 */
import type { Duplex } from 'node:stream'
import { invalidArgValue } from '../errors.js'
import { MAX_PROPOSALS } from './defaults.js'
import { MultistreamListener } from './engine.js'
import { checkProtocols } from './message.js'
import { NegotiationSession, checkStream, type NegotiationOptions } from './session.js'

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
  const machine = new MultistreamListener(list, { maxProposals, lazy: options.lazy !== false })
  return await new NegotiationSession(stream, options).run(machine)
}
