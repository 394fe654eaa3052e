/**
 * Bounded protocol negotiation for the libp2p transport. Inbound streams are negotiated here
 * (multistream-select, against the registrar's protocols) before js-libp2p sees them, at most
 * `maxNegotiationsPerConnection` at once per connection and `maxNegotiations` over the transport;
 * a few more wait unread, and past that a stream is reset at once with RESOURCE_LIMIT_EXCEEDED
 * (busy) instead of timing out. js-libp2p takes the negotiated stream as it is (`stream.protocol`
 * set). Outbound `newStream()` with one protocol is negotiated here too, at most as many at once
 * per connection (the rest wait for a slot), and a busy answer from the peer fails it at once with
 * ERR_LIBP2P_BUSY; towards a peer known to take it (lazyDial), a protocol is dialled lazily (the
 * proposal leaves with the first data, in one send). Both sides run multistream-select 1.0 on the native stream core (its prefix
 * reader, with the message codec of src/negotiation), before the libp2p stream reads anything:
 * bytes a lazy dialer sends after its proposal, and a FIN right behind them, stay in the stream for
 * the handler (a negotiation through js-libp2p's byte stream would lose them).
 */
import type { CounterGroup, Metrics } from '@libp2p/interface'
import { NegotiationError, QuicErrorCode } from '../errors.js'
import { LS, MULTISTREAM_PROTOCOL_ID, MessageDecoder, NA, encodeMessage, encodeProtocolList } from '../negotiation/message.js'
import { Libp2pQuicError, Libp2pQuicErrorCode, StreamResetCode } from './errors.js'
import type { MsQuicStream } from './stream.js'

export interface NegotiationOptions {
  /** Inbound negotiations running at once on one connection. Default 8; Infinity: no limit. */
  maxNegotiationsPerConnection?: number
  /** Inbound negotiations running at once over every connection of the transport. Default 64. */
  maxNegotiations?: number
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

/** An error whose name js-libp2p maps, and whose reset code the peer reads as "busy". */
class BusyError extends Error {
  readonly errorCode = StreamResetCode.RESOURCE_LIMIT_EXCEEDED
  constructor (message: string) {
    super(message)
    this.name = 'NegotiationBusyError'
  }
}

class NegotiationFailedError extends Error {
  readonly errorCode = StreamResetCode.PROTOCOL_NEGOTIATION_FAILED
  constructor (message: string, cause: unknown) {
    super(message, { cause })
    this.name = 'NegotiationFailedError'
  }
}

interface Waiting {
  stream: MsQuicStream
  peer: PeerNegotiations
  start: () => void
}

interface Deadline {
  at: number
  fire: () => void
  prev: Deadline | undefined
  next: Deadline | undefined
}

/**
 * Timeouts of one length on one timer (a timer per negotiation costs about as much as the
 * negotiation): a list in deadline order, since each is added `ms` from now; cancelling unlinks.
 */
export class Deadlines {
  readonly #ms: number
  #head: Deadline | undefined
  #tail: Deadline | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #run = (): void => {
    this.#timer = undefined
    const now = performance.now()
    while (this.#head !== undefined && this.#head.at <= now) {
      const due = this.#head
      this.#unlink(due)
      due.fire()
    }
    this.#arm()
  }

  constructor (ms: number) {
    this.#ms = ms
  }

  /** Calls `fire` in `ms` unless the returned function is called first. */
  add (fire: () => void): () => void {
    const entry: Deadline = { at: performance.now() + this.#ms, fire, prev: this.#tail, next: undefined }
    if (this.#tail === undefined) this.#head = entry
    else this.#tail.next = entry
    this.#tail = entry
    this.#arm()
    return () => {
      if (entry.at !== -1) this.#unlink(entry)
    }
  }

  #unlink (entry: Deadline): void {
    if (entry.prev === undefined) this.#head = entry.next
    else entry.prev.next = entry.next
    if (entry.next === undefined) this.#tail = entry.prev
    else entry.next.prev = entry.prev
    entry.prev = entry.next = undefined
    entry.at = -1
  }

  // One timer for the earliest deadline (a cancelled head leaves it early: it re-arms then).
  #arm (): void {
    if (this.#timer !== undefined || this.#head === undefined) return
    this.#timer = setTimeout(this.#run, Math.max(0, this.#head.at - performance.now()))
    this.#timer.unref()
  }
}

function timeoutError (): Error {
  const error = new Error('Protocol negotiation timed out')
  error.name = 'TimeoutError'
  return error
}

/** How long a negotiation may take: the caller's signal, or the gate's deadline. */
type Limit = { signal: AbortSignal, deadlines?: undefined } | { signal?: undefined, deadlines: Deadlines }

/** Protocols remembered per connection as accepted by the peer (a peer speaks a few). */
const MAX_KNOWN_PROTOCOLS = 64

/** One connection's share. */
export class PeerNegotiations {
  inbound = 0
  queued = 0
  outbound = 0
  readonly #outboundWaiting: Array<() => void> = []
  readonly #gate: NegotiationGate
  // Protocols the peer accepted on this connection: later streams for them may be dialled lazily.
  readonly #accepted = new Set<string>()
  // The protocols the peer's identify listed, once it showed LAZY_NEGOTIATION_MARKER.
  #lazyProtocols: ReadonlySet<string> | undefined

  constructor (gate: NegotiationGate) {
    this.#gate = gate
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
    const limit = this.#gate.maxOutboundPerConnection
    if (this.outbound >= limit) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = this.#outboundWaiting.indexOf(go)
          if (i !== -1) this.#outboundWaiting.splice(i, 1)
          reject(signal?.reason)
        }
        const go = (): void => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        this.#outboundWaiting.push(go)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
    this.outbound++
    if (!this.dialsLazily(protocol)) return await this.#select(stream, protocol, signal)
    void this.#select(stream, protocol, signal).catch(() => {})
    return protocol
  }

  async #select (stream: MsQuicStream, protocol: string, signal?: AbortSignal): Promise<string> {
    try {
      const selected = await selectOnCore(stream, protocol, signal !== undefined ? { signal } : { deadlines: this.#gate.deadlines })
      if (this.#gate.lazyDial !== false && this.#accepted.size < MAX_KNOWN_PROTOCOLS) this.#accepted.add(protocol)
      return selected
    } catch (error) {
      const code = stream.core.readError?.errorCode ?? stream.core.writeError?.errorCode
      if (code === BigInt(StreamResetCode.RESOURCE_LIMIT_EXCEEDED)) {
        this.#gate.count('busy')
        const busy = new Libp2pQuicError(Libp2pQuicErrorCode.BUSY, `The peer is busy: it refused to negotiate ${protocol} now (retry later)`, { cause: error })
        stream.abort(busy)
        throw busy
      }
      stream.abort(error as Error)
      throw error
    } finally {
      this.outbound--
      this.#outboundWaiting.shift()?.()
    }
  }
}

/** The transport's negotiation limits and counters, shared by its connections. */
export class NegotiationGate {
  readonly maxOutboundPerConnection: number
  readonly lazyDial: boolean | 'auto'
  readonly timeout: number
  /** Each negotiation's timeout, without a caller's signal. */
  readonly deadlines: Deadlines
  readonly #perConnection: number
  readonly #overall: number
  readonly #queuedPerConnection: number
  readonly #queuedOverall: number
  readonly #waiting: Waiting[] = []
  #active = 0
  /** Outcomes so far (also reported through libp2p metrics). */
  readonly counts: Record<NegotiationOutcome, number> = { completed: 0, failed: 0, timeout: 0, busy: 0 }
  /** Inbound negotiations whose dialer was lazy: data came right behind its accepted proposal. */
  lazy = 0
  readonly #counter?: CounterGroup

  constructor (options: NegotiationOptions = {}, metrics?: Metrics, streamCredit = 256) {
    this.#perConnection = options.maxNegotiationsPerConnection ?? 8
    this.#overall = options.maxNegotiations ?? 64
    this.#queuedPerConnection = options.maxQueuedPerConnection ?? streamCredit
    this.#queuedOverall = options.maxQueued ?? 1024
    this.maxOutboundPerConnection = options.maxOutboundNegotiationsPerConnection ?? 32
    this.lazyDial = options.lazyDial ?? 'auto'
    if (this.lazyDial !== true && this.lazyDial !== false && this.lazyDial !== 'auto') throw new TypeError(`negotiation.lazyDial must be true, false or 'auto', got ${String(this.lazyDial)}`)
    this.timeout = options.timeout ?? 10_000
    this.deadlines = new Deadlines(this.timeout)
    this.#counter = metrics?.registerCounterGroup('libp2p_msquic_negotiations_total', { label: 'outcome', help: 'Protocol negotiations by outcome (inbound, and outbound busy answers)' })
    metrics?.registerMetricGroup('libp2p_msquic_negotiations', {
      label: 'state',
      help: 'Inbound protocol negotiations running and waiting for a slot',
      calculate: () => ({ active: this.#active, queued: this.#waiting.length })
    })
  }

  /** Inbound negotiations running now. */
  get active (): number { return this.#active }
  /** Inbound streams waiting for a slot. */
  get queued (): number { return this.#waiting.length }

  peer (): PeerNegotiations {
    return new PeerNegotiations(this)
  }

  count (outcome: NegotiationOutcome): void {
    this.counts[outcome]++
    this.#counter?.increment({ [outcome]: true })
  }

  async inbound (peer: PeerNegotiations, stream: MsQuicStream, protocols: () => string[]): Promise<string | null> {
    if (!this.#hasSlot(peer)) {
      if (peer.queued >= this.#queuedPerConnection || this.#waiting.length >= this.#queuedOverall) {
        this.count('busy')
        stream.abort(new BusyError('Too many protocol negotiations at once'))
        return null
      }
      // Unread while it waits: the peer's bytes stay in QUIC flow control.
      peer.queued++
      await new Promise<void>(resolve => { this.#waiting.push({ stream, peer, start: resolve }) })
      peer.queued--
      if (stream.status !== 'open') {
        this.#release(peer)
        this.count('failed')
        return null
      }
    } else {
      peer.inbound++
      this.#active++
    }
    try {
      const protocol = await acceptOnCore(stream, protocols(), { deadlines: this.deadlines }, () => { this.lazy++ })
      this.count('completed')
      return protocol
    } catch (error) {
      const timedOut = (error as Error)?.name === 'TimeoutError' || (error as Error)?.name === 'AbortError'
      this.count(timedOut ? 'timeout' : 'failed')
      stream.abort(new NegotiationFailedError(`Protocol negotiation failed: ${(error as Error)?.message}`, error))
      return null
    } finally {
      this.#release(peer)
    }
  }

  #hasSlot (peer: PeerNegotiations): boolean {
    return peer.inbound < this.#perConnection && this.#active < this.#overall
  }

  // A slot frees: the oldest waiting stream that may take it starts (the slot passes to it).
  #release (peer: PeerNegotiations): void {
    peer.inbound--
    this.#active--
    for (let i = 0; i < this.#waiting.length; i++) {
      const next = this.#waiting[i]
      if (this.#hasSlot(next.peer)) {
        this.#waiting.splice(i, 1)
        next.peer.inbound++
        this.#active++
        next.start()
        return
      }
    }
  }
}

const HEADER = encodeMessage(MULTISTREAM_PROTOCOL_ID)
// Header and proposal, encoded once per protocol (a node dials few distinct protocols).
const proposals = new Map<string, Buffer>()
function proposal (protocol: string): Buffer {
  let bytes = proposals.get(protocol)
  if (bytes === undefined) {
    bytes = Buffer.concat([HEADER, encodeMessage(protocol)])
    if (proposals.size < 256) proposals.set(protocol, bytes)
  }
  return bytes
}

/** Dialers' proposals (and `ls`) answered before the negotiation is refused, as in src/negotiation. */
const MAX_PROPOSALS = 32

class UnsupportedProtocolError extends Error {
  readonly errorCode = StreamResetCode.PROTOCOL_NEGOTIATION_FAILED
  constructor (message: string) {
    super(message)
    this.name = 'UnsupportedProtocolError'
  }
}

function protocolError (message: string): NegotiationError {
  return new NegotiationError(QuicErrorCode.NEGOTIATION_PROTOCOL, message, { phase: 'peer' })
}

/**
 * Runs `step` over the stream's first bytes (the core's prefix reader) until it returns what is
 * left for the application; rejects when it throws, the peer ends or resets the stream, or
 * the limit passes. The caller resets the stream on failure.
 */
async function onPrefix<T> (stream: MsQuicStream, limit: Limit, step: (decoder: MessageDecoder, settle: (value: T) => void) => boolean): Promise<T> {
  const core = stream.core
  return await new Promise<T>((resolve, reject) => {
    const signal = limit.signal
    let done = false
    let result: T
    let cancel: (() => void) | undefined
    const finish = (error?: unknown): void => {
      if (done) return
      done = true
      signal?.removeEventListener('abort', onAbort)
      cancel?.()
      stream.removeEventListener('close', onClose)
      if (error === undefined) resolve(result)
      else reject(error)
    }
    const onAbort = (): void => { finish(signal?.reason ?? new Error('Negotiation aborted')) }
    const onClose = (): void => { finish(new NegotiationError(QuicErrorCode.NEGOTIATION_FAILED, 'The stream closed during protocol negotiation', { phase: 'peer' })) }
    if (signal?.aborted === true) { onAbort(); return }
    signal?.addEventListener('abort', onAbort, { once: true })
    if (limit.deadlines !== undefined) cancel = limit.deadlines.add(() => { finish(timeoutError()) })
    stream.addEventListener('close', onClose, { once: true })
    const decoder = new MessageDecoder()
    core.readPrefix(chunk => {
      if (done) throw new Error('negotiation over')
      if (chunk === null) {
        const error = protocolError('The peer ended the stream before protocol negotiation completed')
        finish(error)
        throw error
      }
      decoder.push(chunk)
      try {
        if (!step(decoder, value => { result = value })) return undefined
      } catch (error) {
        finish(error)
        throw error
      }
      finish()
      return Buffer.from(decoder.take())
    })
  })
}

/**
 * The next complete message after the multistream header, which is checked (and `onHeader` run)
 * when it comes; undefined until more bytes arrive.
 */
function nextMessage (decoder: MessageDecoder, state: { header: boolean }, onHeader?: () => void): string | undefined {
  while (true) {
    const message = decoder.next()
    if (message === undefined || state.header) return message
    if (message !== MULTISTREAM_PROTOCOL_ID) throw protocolError(`Expected the header ${MULTISTREAM_PROTOCOL_ID}, received ${JSON.stringify(message)}`)
    state.header = true
    onHeader?.()
  }
}

/** The listener's side: answers proposals until one is ours; data after it stays for the app. */
async function acceptOnCore (stream: MsQuicStream, protocols: string[], limit: Limit, onLazy: () => void): Promise<string> {
  const state = { header: false }
  let headerSent = false
  let proposals = 0
  return await onPrefix<string>(stream, limit, (decoder, settle) => {
    // Our header rides with the first answer, unless the dialer waits for it before proposing.
    const onHeader = (): void => {
      if (decoder.bufferedLength > 0) return
      stream.sendNegotiation(HEADER)
      headerSent = true
    }
    for (let message = nextMessage(decoder, state, onHeader); message !== undefined; message = nextMessage(decoder, state, onHeader)) {
      if (message === MULTISTREAM_PROTOCOL_ID) throw protocolError('Expected a proposal, received the header again')
      proposals++
      const accepted = protocols.includes(message)
      // Data before our answer: only a lazy dialer's, after a proposal we accept.
      if (decoder.bufferedLength > 0 && !accepted) throw protocolError(`The peer sent data after proposing ${JSON.stringify(message)}, before our answer`)
      if (!accepted && proposals >= MAX_PROPOSALS) throw new UnsupportedProtocolError(`The peer proposed ${MAX_PROPOSALS} protocols without agreement`)
      const answer = message === LS ? encodeProtocolList(protocols) : encodeMessage(accepted ? message : NA)
      // A lazy dialer's data is here already: it waits for nothing, so the answer can wait for ours.
      const lazy = accepted && decoder.bufferedLength > 0
      stream.sendNegotiation(headerSent ? answer : accepted && message !== LS ? proposal(message) : Buffer.concat([HEADER, answer]), lazy)
      headerSent = true
      if (accepted) {
        if (lazy) onLazy()
        settle(message)
        return true
      }
    }
    return false
  })
}

/** The dialer's side for one protocol: header and proposal in one send, then the two answers. */
async function selectOnCore (stream: MsQuicStream, protocol: string, limit: Limit): Promise<string> {
  const state = { header: false }
  const answer = onPrefix<string>(stream, limit, (decoder, settle) => {
    const message = nextMessage(decoder, state)
    if (message === undefined) return false
    if (message === NA) throw new UnsupportedProtocolError(`The peer does not speak ${protocol}`)
    if (message !== protocol) throw protocolError(`Expected ${JSON.stringify(protocol)} or na, received ${JSON.stringify(message)}`)
    settle(message)
    return true
  })
  stream.sendNegotiation(proposal(protocol))
  return await answer
}
