/**
 * Bounded protocol negotiation for the libp2p transport. Inbound streams are negotiated here
 * (multistream-select, against the registrar's protocols) before js-libp2p sees them, at most
 * `maxNegotiationsPerConnection` at once per connection and `maxNegotiations` over the transport;
 * a few more wait unread, and past that a stream is reset at once with RESOURCE_LIMIT_EXCEEDED
 * (busy) instead of timing out: the negotiation limiter of src/negotiation, as ProtocolRouter uses
 * it. js-libp2p takes the negotiated stream as it is (`stream.protocol` set). Outbound
 * `newStream()` with one protocol is negotiated here too, at most as many at once per connection
 * (the rest wait for a slot), and a busy answer from the peer fails it at once with
 * ERR_LIBP2P_BUSY; towards a peer known to take it (lazyDial), a protocol is dialled lazily (the
 * proposal leaves with the first data, in one send). Both sides run src/negotiation's engine on the
 * native stream core's prefix reader, before the libp2p stream reads anything: bytes a lazy dialer
 * sends after its proposal, and a FIN right behind them, stay in the stream for the handler (a
 * negotiation through js-libp2p's byte stream would lose them).
 */
import { TimeoutError, UnsupportedProtocolError, type Metrics } from '@libp2p/interface'
import { NegotiationError, NegotiationErrorCode, invalidArgValue } from '../errors.js'
import { MAX_PROPOSALS, NEGOTIATION_TIMEOUT } from '../negotiation/defaults.js'
import { MultistreamDialer, MultistreamListener, type NegotiationMachine } from '../negotiation/engine.js'
import { Semaphore, type Release } from '../limits/semaphore.js'
import { libp2pSink, type SinkCounter } from '../metrics.js'
import { ConnectionShare, NegotiationLimiter, checkLimit, type NegotiationLimits } from '../negotiation/limiter.js'
import { negotiateOnPrefix } from '../negotiation/prefix.js'
import { Deadlines } from './deadlines.js'
import { Libp2pQuicError, Libp2pQuicErrorCode, StreamResetCode } from './errors.js'
import type { MsQuicStream } from './stream.js'

/** The transport's negotiation options: the limits as ProtocolRouter takes them, with the transport's queues. */
export interface NegotiationOptions extends NegotiationLimits {
  /**
   * Inbound streams of one connection waiting for a slot before more are refused as busy. Default:
   * the transport's `maxStreams` (the QUIC stream credit), so a peer that keeps within its credit
   * waits (its further streams wait inside QUIC flow control) and is never refused.
   */
  maxQueuedPerConnection?: number
  /** Inbound streams of all connections waiting for a slot before more are refused as busy. Default 1024. */
  maxQueued?: number
  /** Outbound negotiations running at once on one connection; the rest wait. Default 32. */
  maxOutboundNegotiationsPerConnection?: number
  /** Milliseconds one negotiation may take (without a caller's signal). Default 10000. */
  timeout?: number
  /**
   * Lazy dialing: the proposal leaves with the stream's first bytes (and its FIN) in one send and
   * newStream() does not wait for the answer, as go-libp2p does (a refusal then resets the stream).
   * Listeners on go-libp2p, rust-libp2p and this transport accept it; js-libp2p's own listener over
   * other transports (@libp2p/utils 7.4 streams) does not see a FIN that came with the proposal, and
   * hangs. So by default (`'auto'`) a stream is dialled lazily only to a peer whose identify lists
   * {@link LAZY_NEGOTIATION_MARKER} (this transport's listener, with negotiation on), for a protocol
   * that identify listed or that the peer already accepted on the connection. `true`: to any peer,
   * for protocols it already accepted on the connection. `false`: never.
   */
  lazyDial?: boolean | 'auto'
}

/**
 * A protocol id this transport registers (never opened) so that identify tells peers its listener
 * takes lazy proposals, even with the FIN in the same flight (see NegotiationOptions.lazyDial).
 */
export const LAZY_NEGOTIATION_MARKER = '/node-msquic/lazy-negotiation/1.0.0'

export type NegotiationOutcome = 'completed' | 'failed' | 'timeout' | 'busy'

/** Inbound streams of all connections that may wait for a slot, by default. */
const DEFAULT_MAX_QUEUED = 1024
/** Outbound negotiations at once per connection, by default. */
const DEFAULT_OUTBOUND_PER_CONNECTION = 32
/** Protocols remembered per connection as accepted by the peer (a peer speaks a few). */
const MAX_KNOWN_PROTOCOLS = 64

/** How long a negotiation may take: the caller's signal, or the gate's deadline. */
type Limit = { signal: AbortSignal, deadlines?: undefined } | { signal?: undefined, deadlines: Deadlines }

/** One connection's share. */
export class PeerNegotiations {
  /** @internal This connection's part of the inbound limits. */
  readonly share = new ConnectionShare()
  readonly #gate: NegotiationGate
  // Outbound negotiations of this connection: the rest wait, in order.
  readonly #outbound: Semaphore
  // Protocols the peer accepted on this connection: later streams for them may be dialled lazily.
  readonly #accepted = new Set<string>()
  // The protocols the peer's identify listed, once it showed LAZY_NEGOTIATION_MARKER.
  #lazyProtocols: ReadonlySet<string> | undefined

  constructor (gate: NegotiationGate) {
    this.#gate = gate
    this.#outbound = new Semaphore(gate.maxOutboundPerConnection)
  }

  /** Inbound negotiations of this connection running now. */
  get inbound (): number {
    return this.share.running
  }

  /** Inbound streams of this connection waiting for a slot. */
  get queued (): number {
    return this.share.queued
  }

  /** Outbound negotiations of this connection running now. */
  get outbound (): number {
    return this.#outbound.used
  }

  /** @internal The peer's identify listed `protocols`, LAZY_NEGOTIATION_MARKER among them. */
  takesLazyProposals (protocols: readonly string[]): void {
    this.#lazyProtocols = new Set(protocols)
  }

  /** Whether a stream for `protocol` is dialled lazily on this connection now. */
  dialsLazily (protocol: string): boolean {
    const mode = this.#gate.lazyDial
    if (mode === false) return false
    if (this.#lazyProtocols !== undefined) return this.#lazyProtocols.has(protocol) || this.#accepted.has(protocol)
    return mode === true && this.#accepted.has(protocol)
  }

  /** Negotiates an inbound stream against `protocols`; resolves with the protocol, or null when the stream was refused or failed (it is reset then). */
  async inboundStream (stream: MsQuicStream, protocols: () => string[]): Promise<string | null> {
    return await this.#gate.inbound(this, stream, protocols)
  }

  /**
   * Negotiates an outbound stream for `protocol` (waiting for a slot first); throws on failure, the
   * stream reset. When dialsLazily(protocol) (as go-libp2p does for protocols it knows the peer
   * speaks), the proposal waits for the stream's first bytes and leaves with them in one send, and
   * this resolves at once; the answer is read in the background, and a refusal (na, or busy) aborts
   * the stream with the error newStream() would have thrown.
   */
  async outboundStream (stream: MsQuicStream, protocol: string, signal?: AbortSignal): Promise<string> {
    // A free slot is taken at once: the proposal then leaves in this turn, with the first data.
    let release = this.#outbound.tryAcquire()
    if (release === undefined) {
      try {
        release = await this.#outbound.acquire(signal)
      } catch (error) {
        stream.abort(error as Error)
        throw error
      }
    }
    if (!this.dialsLazily(protocol)) return await this.#select(stream, protocol, release, signal)
    void this.#select(stream, protocol, release, signal).catch(() => {})
    return protocol
  }

  async #select (stream: MsQuicStream, protocol: string, release: Release, signal?: AbortSignal): Promise<string> {
    const machine = new MultistreamDialer([protocol])
    try {
      const agreed = await negotiate(stream, machine, signal !== undefined ? { signal } : { deadlines: this.#gate.deadlines }, machine.start())
      if (this.#gate.lazyDial !== false && this.#accepted.size < MAX_KNOWN_PROTOCOLS) this.#accepted.add(protocol)
      return agreed.protocol
    } catch (cause) {
      const error = this.#failure(stream, protocol, machine, cause)
      stream.abort(error)
      throw error
    } finally {
      release()
    }
  }

  // What newStream() rejects with, as js-libp2p names it: a peer's busy reset is ERR_LIBP2P_BUSY,
  // its refusal (na) an UnsupportedProtocolError, our deadline a TimeoutError.
  #failure (stream: MsQuicStream, protocol: string, machine: MultistreamDialer, cause: unknown): Error {
    const code = stream.core.readError?.errorCode ?? stream.core.writeError?.errorCode
    if (code === BigInt(StreamResetCode.RESOURCE_LIMIT_EXCEEDED)) {
      this.#gate.count('busy')
      return new Libp2pQuicError(Libp2pQuicErrorCode.BUSY, `The peer is busy: it refused to negotiate ${protocol} now (retry later)`, { cause })
    }
    if (machine.refused) return new UnsupportedProtocolError(`The peer does not speak ${protocol}`)
    if (cause instanceof NegotiationError && cause.code === NegotiationErrorCode.TIMEOUT) return new TimeoutError(cause.message)
    return cause as Error
  }
}

/** The transport's negotiation limits and counters, shared by its connections. */
export class NegotiationGate {
  readonly maxOutboundPerConnection: number
  readonly lazyDial: boolean | 'auto'
  readonly timeout: number
  /** Each negotiation's timeout, without a caller's signal. */
  readonly deadlines: Deadlines
  readonly #limiter: NegotiationLimiter
  /** Outcomes so far (also reported through libp2p metrics). */
  readonly counts: Record<NegotiationOutcome, number> = { completed: 0, failed: 0, timeout: 0, busy: 0 }
  /** Inbound negotiations whose dialer was lazy: data came right behind its accepted proposal. */
  lazy = 0
  readonly #counter?: SinkCounter

  constructor (options: NegotiationOptions = {}, metrics?: Metrics, streamCredit = 256) {
    this.#limiter = new NegotiationLimiter({
      maxNegotiationsPerConnection: options.maxNegotiationsPerConnection,
      maxNegotiations: options.maxNegotiations,
      maxQueuedPerConnection: options.maxQueuedPerConnection ?? streamCredit,
      maxQueued: options.maxQueued ?? DEFAULT_MAX_QUEUED
    })
    this.maxOutboundPerConnection = checkLimit('maxOutboundNegotiationsPerConnection', options.maxOutboundNegotiationsPerConnection, DEFAULT_OUTBOUND_PER_CONNECTION)
    this.lazyDial = options.lazyDial ?? 'auto'
    if (this.lazyDial !== true && this.lazyDial !== false && this.lazyDial !== 'auto') throw invalidArgValue('negotiation.lazyDial', "must be true, false or 'auto'", this.lazyDial)
    this.timeout = options.timeout ?? NEGOTIATION_TIMEOUT
    if (typeof this.timeout !== 'number' || !(this.timeout > 0)) throw invalidArgValue('negotiation.timeout', 'must be a positive number of milliseconds', this.timeout, true)
    this.deadlines = new Deadlines(this.timeout)
    const sink = metrics === undefined ? undefined : libp2pSink(metrics)
    this.#counter = sink?.counter('libp2p_msquic_negotiations_total', { label: 'outcome', help: 'Protocol negotiations by outcome (inbound, and outbound busy answers)' })
    sink?.gauge('libp2p_msquic_negotiations', {
      label: 'state',
      help: 'Inbound protocol negotiations running and waiting for a slot',
      collect: () => ({ active: this.#limiter.running, queued: this.#limiter.queued })
    })
  }

  /** Inbound negotiations running now. */
  get active (): number { return this.#limiter.running }
  /** Inbound streams waiting for a slot. */
  get queued (): number { return this.#limiter.queued }

  peer (): PeerNegotiations {
    return new PeerNegotiations(this)
  }

  count (outcome: NegotiationOutcome): void {
    this.counts[outcome]++
    this.#counter?.add(1, outcome)
  }

  async inbound (peer: PeerNegotiations, stream: MsQuicStream, protocols: () => string[]): Promise<string | null> {
    let turn: ((started: boolean) => void) | undefined
    const admitted = this.#limiter.admit(peer.share, {
      gone: () => stream.status !== 'open',
      start: () => { turn?.(true) },
      drop: () => { turn?.(false) }
    })
    if (admitted === 'refused') {
      this.count('busy')
      stream.abort(new NegotiationError(NegotiationErrorCode.BUSY, 'Too many protocol negotiations at once', { retryable: true }))
      return null
    }
    // Unread while it waits: the peer's bytes stay in QUIC flow control. (A slot free now was
    // taken in admit(), before `turn` exists.)
    if (admitted === 'queued' && !await new Promise<boolean>(resolve => { turn = resolve })) {
      this.count('failed')
      return null
    }
    try {
      const machine = new MultistreamListener(protocols(), { maxProposals: MAX_PROPOSALS, lazy: true })
      const agreed = await negotiate(stream, machine, { deadlines: this.deadlines })
      if (agreed.lazy) this.lazy++
      this.count('completed')
      return agreed.protocol
    } catch (error) {
      const timedOut = error instanceof NegotiationError && error.code === NegotiationErrorCode.TIMEOUT
      this.count(timedOut ? 'timeout' : 'failed')
      stream.abort(error as Error)
      return null
    } finally {
      this.#limiter.release(peer.share)
    }
  }
}

/**
 * Runs `machine` on the stream's first bytes (the core's prefix reader), after sending `first`,
 * until the sides agree; rejects when the machine fails, the stream closes, or the limit passes.
 * The caller resets the stream on failure.
 */
async function negotiate (stream: MsQuicStream, machine: NegotiationMachine, limit: Limit, first?: Uint8Array): Promise<{ protocol: string, lazy: boolean }> {
  const signal = limit.signal
  signal?.throwIfAborted()
  return await new Promise((resolve, reject) => {
    let cancel: (() => void) | undefined
    const onAbort = (): void => { stop(signal?.reason) }
    const onClose = (): void => { stop(new NegotiationError(NegotiationErrorCode.FAILED, 'The stream closed during protocol negotiation', { phase: 'peer' })) }
    signal?.addEventListener('abort', onAbort, { once: true })
    if (limit.deadlines !== undefined) cancel = limit.deadlines.add(() => { stop(new NegotiationError(NegotiationErrorCode.TIMEOUT, 'Protocol negotiation timed out', { phase: 'peer' })) })
    stream.addEventListener('close', onClose, { once: true })
    const stop = negotiateOnPrefix(stream.core, machine, {
      send: (bytes, lazy) => { stream.sendNegotiation(bytes, lazy) },
      settle: (error, protocol, lazy) => {
        signal?.removeEventListener('abort', onAbort)
        cancel?.()
        stream.removeEventListener('close', onClose)
        if (error === undefined) resolve({ protocol: protocol as string, lazy: lazy === true })
        else reject(error)
      }
    })
    if (first !== undefined) stream.sendNegotiation(first)
  })
}
