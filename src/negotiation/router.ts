/**
 * ProtocolRouter: the server side of protocol negotiation, bounded per connection and overall.
 *
 * A stream is negotiated (multistream-select) only while the negotiation limiter has a slot for
 * it; otherwise it waits, unread, in a short queue, and past that queue it is reset at once with
 * RESOURCE_LIMIT_EXCEEDED ("busy"), never left to time out (limiter.ts). Above all the router
 * keeps streams from arriving faster than it negotiates: beyond a connection's first credit, it
 * grants stream credit (StreamCredit) only to connections whose peer is blocked (it sent
 * STREAMS_BLOCKED, or used its last credit), and only as much as there are free slots, for that
 * connection and overall, counting credit granted and not yet used. So a busy server makes its
 * clients wait inside QUIC flow control. Credit can never be taken back: what a peer leaves unused
 * stops counting against the overall limit after IDLE_CREDIT_MS, so idle connections cannot
 * starve busy ones (a burst on old credit waits in the queue). JS thread only.
 */
import { EventEmitter } from 'node:events'
import { NegotiationError, NegotiationErrorCode, NegotiationResetCode, QuicError, QuicErrorCode, invalidArgType } from '../errors.js'
import type { QuicConnection } from '../quic/connection.js'
import { StreamCredit } from '../quic/credit.js'
import type { QuicListener } from '../quic/listener.js'
import type { QuicStream } from '../quic/stream.js'
import { acceptProtocol } from './accept.js'
import type { AdaptiveLimitOptions } from './adaptive.js'
import { NEGOTIATION_TIMEOUT } from './defaults.js'
import { ConnectionShare, NegotiationLimiter, checkLimit, type NegotiationLimits } from './limiter.js'
import { checkProtocols } from './message.js'
import { NegotiationMetrics, type NegotiationMetricsOptions } from './metrics.js'
import { resetStream } from './session.js'

// Unused credit of a connection with no stream for this long no longer counts as in use.
const IDLE_CREDIT_MS = 1000

/** Runs once a stream has agreed on `protocol`; the stream is the handler's from then on. */
export type ProtocolHandler = (stream: QuicStream, info: { protocol: string, connection: QuicConnection }) => void | Promise<void>

export interface ProtocolRouterOptions extends NegotiationLimits {
  /** Milliseconds one negotiation may take. Default 10,000. */
  negotiationTimeout?: number
  /** Move the overall limit with negotiation latency (see AdaptiveLimitOptions); off by default. */
  adaptive?: boolean | AdaptiveLimitOptions
  /** Where to count; a NegotiationMetrics, or options for a new one (e.g. a prom-client registry). */
  metrics?: NegotiationMetrics | NegotiationMetricsOptions
  /** Take data that a lazy dialer sends right after its proposal (see acceptProtocol). Default true. */
  lazy?: boolean
}

export interface HandleOptions {
  /** Handlers of this protocol running at once; a stream past it is reset as busy. Default Infinity. */
  maxConcurrent?: number
}

interface Route {
  handler: ProtocolHandler
  maxConcurrent: number
  active: number
}

// One connection the router serves.
interface Peer {
  connection: QuicConnection
  share: ConnectionShare
  credit?: StreamCredit
}

export interface ProtocolRouterEvents {
  /** A handler threw or rejected; its stream was destroyed. */
  handlerError: [error: unknown, info: { protocol: string, connection: QuicConnection }]
}

export class ProtocolRouter extends EventEmitter<ProtocolRouterEvents> {
  /** Counters and histograms; `metrics.snapshot()` reads them. */
  readonly metrics: NegotiationMetrics
  readonly #limiter: NegotiationLimiter
  readonly #timeout: number
  readonly #lazy: boolean
  readonly #routes = new Map<string, Route>()
  readonly #peers = new Set<Peer>()
  // Connections whose peer is blocked on credit, in the order they asked.
  readonly #blocked = new Set<Peer>()
  // Connections holding credit the router granted and the peer has not used yet.
  readonly #withUnusedCredit = new Set<Peer>()
  #closed: Promise<void> | undefined
  // Resolves `#closed` once the last negotiation has ended.
  #idle: (() => void) | undefined
  // Runs #distribute again once unused credit may have gone idle (nothing else would wake it).
  #recheck: NodeJS.Timeout | undefined

  constructor (options: ProtocolRouterOptions = {}) {
    super()
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
    this.#limiter = new NegotiationLimiter({
      maxNegotiationsPerConnection: options.maxNegotiationsPerConnection,
      maxNegotiations: options.maxNegotiations,
      maxQueuedPerConnection: options.maxQueuedPerConnection,
      maxQueued: options.maxQueued,
      adaptive: options.adaptive,
      onQueued: queued => { this.metrics.setQueued(queued) },
      onLimit: limit => { this.metrics.setLimit(limit) }
    })
    this.#timeout = checkLimit('negotiationTimeout', options.negotiationTimeout, NEGOTIATION_TIMEOUT)
    this.#lazy = options.lazy !== false
    this.metrics = options.metrics instanceof NegotiationMetrics ? options.metrics : new NegotiationMetrics(options.metrics)
    this.metrics.setLimit(this.#limiter.limit)
  }

  /** Registers `handler` for `protocol` (1 to 1,024 UTF-8 bytes); a second call replaces it. */
  handle (protocol: string, handler: ProtocolHandler, options: HandleOptions = {}): this {
    checkProtocols(protocol)
    if (typeof handler !== 'function') throw invalidArgType('handler', 'a function', handler)
    const maxConcurrent = checkLimit('maxConcurrent', options.maxConcurrent, Infinity)
    this.#routes.set(protocol, { handler, maxConcurrent, active: 0 })
    return this
  }

  /** Removes `protocol`; streams proposing it from now on get `na`. */
  unhandle (protocol: string): this {
    this.#routes.delete(protocol)
    return this
  }

  /** The protocols with a handler, in registration order. */
  get protocols (): string[] {
    return [...this.#routes.keys()]
  }

  /** The overall limit on concurrent negotiations now (it moves in adaptive mode). */
  get limit (): number {
    return this.#limiter.limit
  }

  /**
   * Accepts the listener's connections and serves each (see `accept`) until the listener closes.
   * Resolves then. The listener's `maxBidirectionalStreams` is each connection's first credit:
   * keep it at most `maxNegotiationsPerConnection + maxQueuedPerConnection`, or a burst on it is
   * partly refused as busy.
   */
  async serve (listener: QuicListener): Promise<void> {
    if (typeof listener?.accept !== 'function') throw invalidArgType('listener', 'a QuicListener', listener)
    const first = listener.streamLimits.bidirectional
    const { maxPerConnection, maxQueuedPerConnection } = this.#limiter
    if (maxPerConnection !== Infinity && first > maxPerConnection + maxQueuedPerConnection) {
      process.emitWarning(`The listener grants ${first} streams per connection up front, more than this ProtocolRouter negotiates or queues (${maxPerConnection} + ${maxQueuedPerConnection}); a burst on them is partly refused as busy. Listen with maxBidirectionalStreams: ${maxPerConnection}.`, 'NegotiationWarning')
    }
    while (this.#closed === undefined) {
      let connection: QuicConnection
      try {
        connection = await listener.accept()
      } catch (error) {
        if (error instanceof QuicError && error.code === QuicErrorCode.CLOSED) return
        throw error
      }
      if (this.#closed !== undefined) {
        void connection.close()
        return
      }
      this.accept(connection)
    }
  }

  /** Serves one connection: every stream it receives is negotiated and handed to its handler. */
  accept (connection: QuicConnection): void {
    if (typeof connection?.acceptStream !== 'function') throw invalidArgType('connection', 'a QuicConnection', connection)
    if (this.#closed !== undefined) throw new QuicError(QuicErrorCode.CLOSED, 'The router is closed')
    const peer: Peer = { connection, share: new ConnectionShare() }
    if (this.#limiter.maxPerConnection !== Infinity) {
      const credit = peer.credit = new StreamCredit(connection)
      // One-way streams cannot be negotiated: none are granted beyond the first credit.
      try {
        connection.setStreamLimits({ unidirectional: 0 })
      } catch {}
      credit.on('blocked', () => {
        if (this.#closed !== undefined) return
        this.#blocked.add(peer)
        this.#distribute()
      })
    }
    this.#peers.add(peer)
    void this.#acceptLoop(peer)
  }

  /**
   * Stops taking new connections and streams: streams waiting for a slot, and any that arrive from
   * now on, are refused as busy; negotiations in progress finish. Resolves once they have (each
   * ends by agreement, failure or its timeout). Idempotent: a second call resolves with the first.
   */
  async close (): Promise<void> {
    if (this.#closed !== undefined) return await this.#closed
    this.#closed = new Promise(resolve => { this.#idle = resolve })
    clearTimeout(this.#recheck)
    this.#limiter.close()
    this.#resolveIdle()
    return await this.#closed
  }

  async #acceptLoop (peer: Peer): Promise<void> {
    try {
      // After close() too: every stream is answered (refused) until the connection ends.
      while (true) this.#arrived(peer, await peer.connection.acceptStream())
    } catch {
      // The connection closed: nothing more will arrive.
    } finally {
      this.#peers.delete(peer)
      this.#blocked.delete(peer)
      this.#withUnusedCredit.delete(peer)
      this.#distribute()
    }
  }

  #arrived (peer: Peer, stream: QuicStream): void {
    const credit = peer.credit
    // One-way streams come out of the peer's one-way credit, which the router does not manage.
    if (credit !== undefined && !stream.unidirectional) {
      credit.arrived()
      if (credit.granted === 0) this.#withUnusedCredit.delete(peer)
      // On its last credit the peer is blocked: it will most likely want more.
      if (credit.blocked) this.#blocked.add(peer)
    }
    if (this.#closed !== undefined) {
      this.#refuse(stream)
      return
    }
    if (stream.unidirectional) {
      // multistream-select needs an answer: a one-way stream can never be negotiated.
      resetStream(stream, new NegotiationError(NegotiationErrorCode.PROTOCOL, 'A unidirectional stream cannot be negotiated'))
      this.metrics.count('failed')
      return
    }
    const arrived = performance.now()
    const admitted = this.#limiter.admit(peer.share, {
      gone: () => stream.destroyed,
      start: () => {
        stream.off('error', ignore)
        this.#negotiate(peer, stream, arrived)
      },
      drop: reason => {
        if (reason === 'closed') this.#refuse(stream)
        else this.metrics.count('failed')
      }
    })
    // Unread while it waits: a reset by the peer then is no one's error (it is dropped at its turn).
    if (admitted === 'queued') stream.on('error', ignore)
    else if (admitted === 'refused') this.#refuse(stream)
  }

  #negotiate (peer: Peer, stream: QuicStream, arrived: number): void {
    this.metrics.started()
    const started = performance.now()
    this.metrics.observe('queued', started - arrived)
    const available = [...this.#routes.keys()]
    acceptProtocol(stream, available, { timeout: this.#timeout, lazy: this.#lazy }).then(protocol => {
      this.#settled(peer, started, 'completed')
      this.#dispatch(peer, stream, protocol)
    }, (error: unknown) => {
      // acceptProtocol resets the stream on a failed negotiation, but not on a refused argument
      // (no protocol registered yet): the stream must end either way.
      if (!stream.destroyed) resetStream(stream, error)
      const timedOut = error instanceof QuicError && error.code === NegotiationErrorCode.TIMEOUT
      this.#settled(peer, started, timedOut ? 'timeout' : 'failed')
    })
  }

  // A slot frees: the limiter passes it on, then credit is re-granted.
  #settled (peer: Peer, started: number, outcome: 'completed' | 'failed' | 'timeout'): void {
    this.metrics.finished(outcome)
    const took = performance.now() - started
    this.metrics.observe('negotiating', took)
    this.#limiter.release(peer.share, took)
    this.#distribute()
    this.#resolveIdle()
  }

  // After close(): resolves it once no negotiation runs.
  #resolveIdle (): void {
    if (this.#idle !== undefined && this.#limiter.running === 0) {
      this.#idle()
      this.#idle = undefined
    }
  }

  // Grants blocked peers as many streams as they have free slots, within what is free overall
  // (slots minus negotiations, waiting streams and granted credit not yet used), oldest ask first.
  #distribute (): void {
    if (this.#closed !== undefined || this.#blocked.size === 0) return
    const limiter = this.#limiter
    let free = limiter.limit - limiter.running - limiter.queued - this.#unusedCredit()
    for (const peer of this.#blocked) {
      if (free <= 0) break
      const credit = peer.credit as StreamCredit
      const own = limiter.perConnection - peer.share.running - peer.share.queued - credit.outstanding
      if (own <= 0) continue  // it gets its turn when one of its own negotiations ends
      const count = Math.min(own, free)
      this.#blocked.delete(peer)
      if (credit.grant(count)) {
        this.#withUnusedCredit.add(peer)
        free -= count
      }
    }
    if (this.#blocked.size > 0 && this.#withUnusedCredit.size > 0 && this.#recheck === undefined) {
      this.#recheck = setTimeout(() => {
        this.#recheck = undefined
        this.#distribute()
      }, IDLE_CREDIT_MS).unref()
    }
  }

  #unusedCredit (): number {
    const recent = performance.now() - IDLE_CREDIT_MS
    let unused = 0
    for (const peer of this.#withUnusedCredit) {
      const credit = peer.credit as StreamCredit
      if (credit.lastActive >= recent) unused += credit.granted
    }
    return unused
  }

  #dispatch (peer: Peer, stream: QuicStream, protocol: string): void {
    const route = this.#routes.get(protocol)
    const info = { protocol, connection: peer.connection }
    if (route === undefined || route.active >= route.maxConcurrent) {
      // Removed meanwhile, or at its own limit: busy, and the client may retry.
      resetStream(stream, new NegotiationError(NegotiationErrorCode.BUSY, `The ${protocol} handler is at its limit`))
      this.metrics.count('busy')
      return
    }
    route.active++
    let running: void | Promise<void>
    try {
      running = route.handler(stream, info)
    } catch (error) {
      running = Promise.reject(error)
    }
    Promise.resolve(running).then(() => { route.active-- }, (error: unknown) => {
      route.active--
      stream.destroy()
      this.emit('handlerError', error, info)
    })
  }

  #refuse (stream: QuicStream): void {
    resetStream(stream, new NegotiationError(NegotiationErrorCode.BUSY, 'Too many negotiations', { retryable: true }))
    this.metrics.count('busy')
  }
}

/** The busy reset code, for peers that are not node-msquic. */
export const BUSY_RESET_CODE = NegotiationResetCode.RESOURCE_LIMIT_EXCEEDED

function ignore (): void {}
