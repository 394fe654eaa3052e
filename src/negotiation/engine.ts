/**
 * The multistream-select 1.0 engine: the listener's and the dialer's side as state machines
 * without I/O. Received bytes go in (push); out come the bytes to send, and once the sides agree,
 * the protocol and the bytes that followed the last negotiation message (the protocol's own). Every
 * driver feeds one of these (a Node Duplex: session.ts; a stream core's prefix reader: prefix.ts,
 * for QuicStream and the libp2p stream), so the rules of the exchange live here once. A peer that
 * breaks the exchange makes push() throw a NegotiationError; the machine is spent then. Pure.
 */
import { NegotiationError, NegotiationErrorCode } from '../errors.js'
import { LS, MULTISTREAM_PROTOCOL_ID, NA, MessageDecoder, encodeMessage, encodeProtocolList } from './message.js'

/** What one push() gives. */
export interface NegotiationStep {
  /** Bytes to send now, in one write. */
  send?: Uint8Array
  /** The protocol both sides agreed on; negotiation is over. */
  protocol?: string
  /** With `protocol`: the bytes received after the last negotiation message, for the protocol. */
  rest?: Uint8Array
}

/** Either side's machine, as its drivers see it. */
export interface NegotiationMachine {
  /** Takes received bytes (kept by reference: do not change them afterwards). Throws a NegotiationError when the peer broke the exchange. */
  push: (chunk: Uint8Array) => NegotiationStep
  /** The error for a peer that ended its side of the stream before the sides agreed. */
  end: () => NegotiationError
}

/** The error for a peer that broke the exchange. */
export function protocolError (message: string): NegotiationError {
  return new NegotiationError(NegotiationErrorCode.PROTOCOL, message, { phase: 'peer' })
}

/** The error for an unexpected message, quoting (the start of) what was received. */
export function unexpected (what: string, received: string): NegotiationError {
  const quoted = JSON.stringify(received.length > 64 ? received.slice(0, 64) + '…' : received)
  return protocolError(`Unexpected multistream-select message: ${what}, received ${quoted}`)
}

/** The error for proposals refused with nothing left to propose. */
export function noCommonProtocol (message: string): NegotiationError {
  return new NegotiationError(NegotiationErrorCode.FAILED, message, { phase: 'peer' })
}

const HEADER = encodeMessage(MULTISTREAM_PROTOCOL_ID)
// The header and one message, encoded once per protocol (a node speaks and dials few): a dialer's
// first flight, or a listener's answer when its header rides with it. Shared: never changed.
const withHeader = new Map<string, Uint8Array>()

function headerAnd (message: string): Uint8Array {
  let bytes = withHeader.get(message)
  if (bytes === undefined) {
    bytes = Buffer.concat([HEADER, encodeMessage(message)])
    if (withHeader.size < 256) withHeader.set(message, bytes)
  }
  return bytes
}

function ended (decoder: MessageDecoder): NegotiationError {
  const partial = decoder.bufferedLength > 0 ? ' in the middle of a message' : ''
  return protocolError(`The peer ended the stream${partial} before protocol negotiation completed`)
}

/** Options of the listener's machine. */
export interface ListenerMachineOptions {
  /** Proposals (and `ls` requests) to take; the last one, unless accepted, fails the negotiation. */
  maxProposals: number
  /** Keep data a lazy dialer sends right after the proposal we accept (else it is a protocol error). */
  lazy: boolean
}

/**
 * The listener's side: reads the dialer's header, answers each proposal with an echo (accepted)
 * or `na`, and `ls` with the protocols. Our header rides with the first answer, or goes alone at
 * once if the dialer waits for it. A dialer may send data only right behind the proposal we accept
 * (a lazy one), never before our answer to a refused one.
 */
export class MultistreamListener implements NegotiationMachine {
  readonly #protocols: readonly string[]
  readonly #options: ListenerMachineOptions
  readonly #decoder = new MessageDecoder()
  #headerIn = false
  #headerSent = false
  #proposals = 0

  constructor (protocols: readonly string[], options: ListenerMachineOptions) {
    this.#protocols = protocols
    this.#options = options
  }

  push (chunk: Uint8Array): NegotiationStep {
    const decoder = this.#decoder
    decoder.push(chunk)
    for (let message = decoder.next(); message !== undefined; message = decoder.next()) {
      // Bytes the dialer sent after this message, before hearing our answer.
      const more = decoder.bufferedLength > 0
      if (!this.#headerIn) {
        if (message !== MULTISTREAM_PROTOCOL_ID) throw unexpected(`expected the header ${MULTISTREAM_PROTOCOL_ID}`, message)
        this.#headerIn = true
        if (more) continue
        // The dialer waits for our header before proposing.
        this.#headerSent = true
        return { send: HEADER }
      }
      if (message === MULTISTREAM_PROTOCOL_ID) throw unexpected('expected a proposal', message)
      this.#proposals++
      const accepted = this.#protocols.includes(message)
      if (more && !(accepted && this.#options.lazy)) {
        throw protocolError(`The peer sent data after proposing ${JSON.stringify(message)}, before our answer`)
      }
      // The last refusal is the reset itself: an na sent now would be discarded by it.
      if (!accepted && this.#proposals >= this.#options.maxProposals) {
        throw noCommonProtocol(`The peer proposed ${this.#options.maxProposals} protocols without agreement`)
      }
      const send = this.#answer(message, accepted)
      return accepted ? { send, protocol: message, rest: decoder.take() } : { send }
    }
    return {}
  }

  end (): NegotiationError {
    return ended(this.#decoder)
  }

  #answer (message: string, accepted: boolean): Uint8Array {
    const headerSent = this.#headerSent
    this.#headerSent = true
    if (accepted && !headerSent) return headerAnd(message)
    const answer = message === LS ? encodeProtocolList(this.#protocols) : encodeMessage(accepted ? message : NA)
    return headerSent ? answer : Buffer.concat([HEADER, answer])
  }
}

/**
 * The dialer's side: the header and the first proposal leave together (start()), then the next
 * proposal after each `na`, until the listener echoes one. A refusal of the last one throws
 * `ERR_NEGOTIATION_FAILED`, and `refused` tells it from other failures.
 */
export class MultistreamDialer implements NegotiationMachine {
  readonly #protocols: readonly string[]
  readonly #decoder = new MessageDecoder()
  #headerIn = false
  #proposed = 0
  #refused = false

  /** @param protocols - In order of preference, checked (see checkProtocols). */
  constructor (protocols: readonly string[]) {
    this.#protocols = protocols
  }

  /** The first flight: the header and the first proposal, to send in one write. */
  start (): Uint8Array {
    return headerAnd(this.#protocols[0])
  }

  /** Whether the listener refused every protocol proposed. */
  get refused (): boolean {
    return this.#refused
  }

  push (chunk: Uint8Array): NegotiationStep {
    const decoder = this.#decoder
    decoder.push(chunk)
    for (let message = decoder.next(); message !== undefined; message = decoder.next()) {
      if (!this.#headerIn) {
        if (message !== MULTISTREAM_PROTOCOL_ID) throw unexpected(`expected the header ${MULTISTREAM_PROTOCOL_ID}`, message)
        this.#headerIn = true
        continue
      }
      const proposal = this.#protocols[this.#proposed]
      if (message === proposal) return { protocol: message, rest: decoder.take() }
      if (message !== NA) throw unexpected(`expected ${JSON.stringify(proposal)} or na`, message)
      if (++this.#proposed === this.#protocols.length) {
        this.#refused = true
        throw noCommonProtocol(`The peer supports none of the protocols proposed: ${this.#protocols.join(', ')}`)
      }
      // Only the echo may be followed by data (the protocol's own): after na the listener waits.
      if (decoder.bufferedLength > 0) throw protocolError('The peer sent data after na, before the next proposal')
      return { send: encodeMessage(this.#protocols[this.#proposed]) }
    }
    return {}
  }

  end (): NegotiationError {
    return ended(this.#decoder)
  }
}
