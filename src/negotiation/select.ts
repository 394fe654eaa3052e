/**
 * The dialer's side of multistream-select 1.0 over a Duplex: propose protocols in order until the
 * listener echoes one.
 */
import type { Duplex } from 'node:stream'
import { QuicStream } from '../quic/stream.js'
import { MultistreamDialer } from './engine.js'
import { selectProtocolLazily } from './lazy.js'
import { checkProtocols } from './message.js'
import { NegotiationSession, checkStream, type NegotiationOptions } from './session.js'

/** Options for {@link selectProtocol}. */
export interface SelectProtocolOptions extends NegotiationOptions {
  /**
   * With a single protocol on a QuicStream: resolve as soon as the proposal is written, so the
   * application can send data in the same flight (rust-libp2p's V1Lazy). The listener's answer is
   * checked when it arrives, before the application reads anything; a refusal (`na`) or a
   * malformed answer then destroys the stream with the error. The listener must accept data right
   * after the proposal (`lazy` in {@link acceptProtocol}). Ignored with several protocols, and on
   * any other Duplex (it has no place to take the answer out before its readers see it: use
   * {@link selectProtocolLazily}, which wraps it). Default false.
   */
  lazy?: boolean
}

let warnedLazy = false

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
  if (options.lazy === true && list.length === 1) {
    if (stream instanceof QuicStream) {
      checkStream(stream, options, false)
      await selectProtocolLazily(stream, list[0], options)
      return list[0]
    }
    if (!warnedLazy) {
      warnedLazy = true
      process.emitWarning('selectProtocol({ lazy: true }) negotiates in full on a Duplex that is not a QuicStream (its readers would see the answer); selectProtocolLazily() wraps such a stream instead.', 'NegotiationWarning')
    }
  }
  checkStream(stream, options, true)
  const machine = new MultistreamDialer(list)
  return await new NegotiationSession(stream, options).run(machine, machine.start())
}
