/**
 * QuicConnection: one QUIC connection, client or server. Peer streams are queued the moment MsQuic
 * reports them (natively first, then here) and handed out oldest first by acceptStream(), whenever
 * it is called. JS thread only.
 */
import { EventEmitter } from 'node:events'
import { checkOptions, checkSignal, invalidArgType, invalidArgValue, invalidState } from '../args.js'
import { QuicError, QuicErrorCode, type ErrorCode, abortedError, closedError, errorFromStatus } from '../errors.js'
import { Ev, PeerStreamFlag, isDispatching, kOnNativeEvent, native, runtime, type NativeAddress, type NativeConnection, type NativeConnectionStats, type NativeStream } from '../native.js'
import { AcceptQueue } from './accept-queue.js'
import { checkErrorCode } from './error-code.js'
import type { VerifyPeer } from './config.js'
import { RequestServer, sendRequest, type RequestHandler as RequestHandlerOn, type RequestInfo as RequestInfoOn, type RequestOptions, type ServeRequestsOptions } from './request.js'
import { StreamCore, isCoreSnapshot, type CoreSnapshot } from './stream-core.js'
import { QuicStream } from './stream.js'
import { kCloseError, kClosedByApp, kConnected, kHandOver, kStreamBlocked, kStreamClosed, kStreamMoved, kTaken } from './symbols.js'
import { connectionGone, connectionOpened } from './memory.js'

// QUIC's transport error APPLICATION_ERROR: 0x0c in RFC 9000 §20.1, 0x0b as MsQuic 2.5 sends it
// (its frame.h has the wrong number; 0x0b is INVALID_TOKEN, which no server sends at this point).
const APPLICATION_ERRORS = new Set([0xbn, 0xcn])

/**
 * Makes the adapter an app gets for a stream (the node:stream Duplex by default). The libp2p
 * transport and other adapters pass their own to `openStreamWith()` / `acceptStreamWith()`.
 */
export type StreamAdapterFactory<T> = (core: StreamCore) => T

const duplexAdapter: StreamAdapterFactory<QuicStream> = core => new QuicStream(core)
const keepDirections: StreamAdapterFactory<QuicStream> = core => new QuicStream(core, { autoDestroy: false })

// The Duplex for `options`, checked before anything starts.
function duplexFor (options: { autoDestroy?: unknown }): StreamAdapterFactory<QuicStream> {
  const { autoDestroy } = checkOptions(options)
  if (autoDestroy !== undefined && typeof autoDestroy !== 'boolean') throw invalidArgType('autoDestroy', 'a boolean', autoDestroy)
  return autoDestroy === false ? keepDirections : duplexAdapter
}

/** What a request handler (serveRequests) learns besides the body. */
export type RequestInfo = RequestInfoOn<QuicConnection>
/** Answers one request: the reply body (or a promise of it). A thrown error resets the stream. */
export type RequestHandler = RequestHandlerOn<QuicConnection>

/** How and why a connection closed. */
export interface QuicCloseInfo {
  /** Who closed it: this side, the peer (CONNECTION_CLOSE with an application code), or the transport. */
  by: 'local' | 'peer' | 'transport'
  /** The application error code (local or peer), or the transport's wire error code (see ErrorCode). */
  code: ErrorCode
  /** The reason given to close(), for local closes. */
  reason?: string
  /** Set when the close was not a clean application close with code 0. */
  error?: QuicError
}

export interface OpenStreamOptions {
  /** Open a unidirectional (send-only) stream. Default false. */
  unidirectional?: boolean
  /** Gives up waiting for the peer's stream credit. */
  signal?: AbortSignal
  /**
   * Starts the stream with these bytes, in the same native call that opens it (one MsQuic
   * operation, no wait): openStream() then resolves at once, and the bytes wait inside MsQuic for
   * the peer's stream credit if need be.
   */
  body?: Uint8Array
  /** With `body`: end the writable side after it (FIN in the same call). Default false. */
  end?: boolean
  /**
   * What the Duplex does once a direction fails (see QuicStream and the README's "After an
   * error"): destroyed, as Node streams are (true, the default), or the other direction left
   * working until the app ends it (false). Not used by `openStreamWith()`.
   */
  autoDestroy?: boolean
}

export interface AcceptStreamOptions {
  /** Gives up waiting. */
  signal?: AbortSignal
  /**
   * Only one-way (`true`) or only two-way (`false`) peer streams, oldest first; the others stay
   * queued for their own takers. Default: the oldest of either.
   */
  unidirectional?: boolean
  /** As `openStream()`'s `autoDestroy` (default true). Not used by `acceptStreamWith()`. */
  autoDestroy?: boolean
}

export interface CloseOptions {
  /** Application error code sent to the peer (0 to 2^62-1). Default 0. */
  code?: number | bigint
  /** Kept locally in `closed`; not sent on the wire. */
  reason?: string
  /**
   * Finish open streams first: no new streams either way (queued, unaccepted peer streams are reset
   * with `code`), then close once every open stream has ended. Default false: close at once, ending
   * every stream.
   */
  graceful?: boolean
  /** With `graceful`: milliseconds to wait for streams before closing anyway. Default 30000. */
  timeout?: number
}

/** A connection's figures (see `QuicConnection.stats()`): MsQuic's, and its streams. */
export interface QuicConnectionStats extends NativeConnectionStats {
  /** Streams of this connection not closed yet, both directions. */
  openStreams: number
}

export interface QuicConnectionEvents {
  /** An unreliable datagram arrived (with `datagrams: true` on both sides). */
  datagram: [data: Buffer]
  /** A `sendDatagram()` that returned false (the send queue was full) can be tried again. */
  datagramDrain: []
  /** The largest datagram that can be sent changed; 0 means none can be (see `maxDatagramSize`). */
  datagramState: [info: { maxSize: number }]
  /** Local streams waiting for the peer's stream credit changed (see `blockedStreams`). */
  streamsBlocked: [count: number]
  /** The peer granted more stream credit. */
  streamsAvailable: [available: { bidirectional: number, unidirectional: number }]
  /** The peer wants to open streams but has no credit left (informational). */
  peerNeedsStreams: [info: { bidirectional: boolean }]
  /** The connection closed; the same value `closed` resolves with. */
  close: [info: QuicCloseInfo]
  /** A request handler (serveRequests) threw or rejected; the stream was reset. */
  requestError: [error: unknown, info: RequestInfo]
  /** Client side: the server sent a session ticket (see `sessionTicket`). */
  sessionTicket: [ticket: Buffer]
  /**
   * The peer's address changed and MsQuic validated the new path (a NAT rebinding, or the peer
   * migrating); `remoteAddress` says the new one from now on.
   */
  peerAddressChanged: [address: NativeAddress]
}

/**
 * A connection on its way to another thread: a plain object, to send with `postMessage()` and pass
 * to `QuicConnection.adopt()` there. It can be adopted once.
 */
export interface QuicConnectionHandle {
  kind: 'node-msquic/connection'
  id: number
  /** @internal The peer streams not yet accepted, which travel with the connection. */
  streams: CoreSnapshot[]
}

interface ConnectionInit {
  /** Made by adopt(): already connected. */
  adopted?: boolean
  /** The peer stream credit the connection starts with (its transport parameters). */
  streamLimits?: StreamLimits
  server: boolean
  verifyPeer?: VerifyPeer
  /** Server side: called once the handshake completes (the listener queues it for accept()). */
  onConnected?: (connection: QuicConnection) => void
  /** Server side: the listener serves requests (its connections collect them natively from the start). */
  requests?: { handler: RequestHandler, options: ServeRequestsOptions }
}

/** How many streams of each kind the peer may have open at once (see `setStreamLimits`). */
export interface StreamLimits {
  bidirectional: number
  unidirectional: number
}

// The last id given to a connection of this thread.
let lastConnectionId = 0

export class QuicConnection extends EventEmitter<QuicConnectionEvents> {
  /**
   * Unique among this thread's connections, from the first packet (a listener's `admit` sees it)
   * to the end; an adopted connection gets a new one. Keys what is held for the connection, e.g.
   * its admission reservation.
   */
  readonly id = ++lastConnectionId
  readonly #native: NativeConnection
  readonly #server: boolean
  readonly #verifyPeer?: VerifyPeer
  readonly #onConnected?: (connection: QuicConnection) => void
  readonly #inbound = new AcceptQueue<StreamCore>('acceptStream', core => { core.taken(); this.#held.add(core) })
  readonly #closed: Promise<QuicCloseInfo>
  #resolveClosed!: (info: QuicCloseInfo) => void
  #connected?: { resolve: () => void, reject: (error: Error) => void }
  // The handshake's outcome, made for whoever asks first and shared by all who ask.
  #handshake: Promise<void> | undefined
  #state: ConnectionState
  #closeInfo?: QuicCloseInfo
  #info?: { alpn: string, serverName?: string, sessionResumed?: boolean, localAddress: NativeAddress, remoteAddress: NativeAddress }
  #blockedStreams = 0
  #openStreams = 0
  // A graceful close in progress: its code, and what to call once the last stream has ended.
  // While draining: called when the last open stream closes.
  #drained: (() => void) | undefined
  // Streams the app holds (opened, or accepted) until they close: they stay here if the connection moves.
  readonly #held = new Set<StreamCore>()
  #maxDatagramSize = 0
  // Datagrams that arrived before anyone listened for them (a server connection not accepted yet):
  // kept, up to the receive queue's size, until the first 'datagram' listener comes.
  #earlyDatagrams: Buffer[] | undefined = []
  #datagramsDropped = 0
  #sessionTicket: Buffer | undefined
  #streamLimits: StreamLimits | undefined
  #requests: RequestServer<QuicConnection> | undefined
  #peerCertificate: Buffer | undefined

  /** @internal Connections come from connect() and QuicListener.accept(). */
  constructor (handle: NativeConnection, init: ConnectionInit) {
    super()
    this.#native = handle
    connectionOpened()
    this.#server = init.server
    this.#verifyPeer = init.verifyPeer
    this.#onConnected = init.onConnected
    this.#state = 'connecting'
    this.#streamLimits = init.streamLimits === undefined ? undefined : { ...init.streamLimits }
    if (init.requests !== undefined) this.#requests = new RequestServer<QuicConnection>(this, init.requests.handler, init.requests.options)
    this.#closed = new Promise(resolve => { this.#resolveClosed = resolve })
    handle.owner = this
    if (init.adopted === true) {
      const info = handle.info()
      this.#info = info
      this.#maxDatagramSize = info.maxDatagramSize
      this.#state = 'open'
    }
  }

  /**
   * Takes over, in this thread, a connection another thread gave up with `transfer()`. Every event
   * since (new streams, data, closes) comes here, in order, including streams the other thread had
   * received but not accepted.
   */
  static adopt (handle: QuicConnectionHandle): QuicConnection {
    if (typeof handle !== 'object' || handle === null || handle.kind !== 'node-msquic/connection' ||
        !Number.isSafeInteger(handle.id) || !Array.isArray(handle.streams) || !handle.streams.every(isCoreSnapshot)) {
      throw invalidArgType('handle', 'a handle from connection.transfer()', handle)
    }
    const [native, ...streams] = runtime().adoptConnection(handle.id)
    const connection = new QuicConnection(native, { adopted: true, server: native.info().server })
    // Before any of their events (those come from the native queue, later): queued as they were.
    streams.forEach((stream, i) => connection.#arrived(new StreamCore(stream, connection, false, { snapshot: handle.streams[i] })))
    return connection
  }

  /**
   * Gives this connection up so another thread can `adopt()` it: returns a handle to post there.
   * Everything that arrives meanwhile is held natively and delivered, in order, to the new owner;
   * nothing more reaches this object, which refuses further use with ERR_QUIC_TRANSFERRED. Streams
   * received but not yet accepted move along. Streams this side already accepted or opened stay
   * here and usable (their events keep coming here); if the connection closes over there, they end
   * with ERR_QUIC_CLOSED. Call it from async code, not from inside an event listener.
   */
  transfer (): QuicConnectionHandle {
    this.#assertOpen()
    if (isDraining(this.#state)) throw new QuicError(QuicErrorCode.CLOSED, 'The connection is closing')
    if (this.#state === 'connecting') throw new QuicError(QuicErrorCode.CLOSED, 'The connection is not connected yet')
    if (this.#requests !== undefined) throw invalidState('transfer() cannot move a connection that serves requests')
    if (isDispatching()) throw invalidState('transfer() cannot run inside an event listener; call it from async code (e.g. after an await)')
    const runtimeBinding = runtime()
    for (const core of this.#held) {
      runtimeBinding.keepStream(core.native)
      core.orphan()
    }
    this.#held.clear()
    const queued = this.#inbound.drain()
    const id = runtimeBinding.transferConnection(this.#native, queued.map(core => core.native))
    const streams = queued.map(core => core.detach())
    this.#state = 'transferred'
    connectionGone()
    this.#openStreams = 0
    this.#native.owner = undefined
    const moved = new QuicError(QuicErrorCode.TRANSFERRED, 'The connection moved to another thread')
    this.#inbound.close(moved)
    this.#connected?.reject(moved)
    this.#resolveClosed({ by: 'local', code: 0n, reason: 'transferred to another thread' })
    return { kind: 'node-msquic/connection', id, streams }
  }

  /** 'client' or 'server'. */
  get side (): 'client' | 'server' {
    return this.#server ? 'server' : 'client'
  }

  /** The negotiated ALPN protocol. */
  get alpnProtocol (): string | undefined {
    return this.#info?.alpn
  }

  /** Server side: the name the client asked for (TLS SNI); undefined if it sent none, and on clients. */
  get serverName (): string | undefined {
    return this.#info?.serverName
  }

  /**
   * Resolves once the handshake has completed (at once if it has); rejects if it fails. connect()
   * resolves after it, unless it was asked for early data (`earlyData`).
   */
  get connected (): Promise<void> {
    return this[kConnected]
  }

  /**
   * Client side: whether what streams and requests send before the handshake completes goes out as
   * 0-RTT data (`connect({ sessionTicket, earlyData: true })` with a ticket MsQuic could use).
   */
  get earlyData (): boolean {
    return !this.#server && this.#native.earlyData()
  }

  /** Whether the handshake resumed an earlier session (see `sessionTicket`). */
  get sessionResumed (): boolean {
    return this.#info?.sessionResumed === true
  }

  /**
   * Client side: the latest session ticket the server sent (after the handshake; also the
   * `sessionTicket` event). Pass it as `sessionTicket` to a later `connect()` to the same server to
   * resume the session. It is a secret: whoever holds it can resume as this client.
   */
  get sessionTicket (): Buffer | undefined {
    return this.#sessionTicket
  }

  /** This side's address, as node:net reports addresses. */
  get localAddress (): NativeAddress | undefined {
    return this.#info?.localAddress
  }

  /** The peer's address. */
  get remoteAddress (): NativeAddress | undefined {
    return this.#info?.remoteAddress
  }

  /**
   * The peer's leaf certificate (DER) as `verifyPeer` was given it, once it ran; undefined without
   * `verifyPeer` or when the peer sent none. A server's resumed connection has the certificate its
   * client presented when the ticket was issued (tickets carry it; a resumed TLS 1.3 handshake
   * sends none, and `verifyPeer` does not run again).
   */
  get peerCertificate (): Buffer | undefined {
    return this.#peerCertificate
  }

  /** The largest datagram `sendDatagram()` takes now; 0 while the peer takes none. */
  get maxDatagramSize (): number {
    return this.#maxDatagramSize
  }

  /**
   * Sends one unreliable datagram (RFC 9221): it may be lost or reordered, never split. Returns
   * false, sending nothing, while the send queue is full (see `datagramSendQueue`). Throws
   * ERR_QUIC_DATAGRAM_TOO_LARGE beyond `maxDatagramSize`, ERR_QUIC_DATAGRAMS_DISABLED if the peer
   * takes none.
   */
  sendDatagram (data: Uint8Array): boolean {
    if (!(data instanceof Uint8Array)) throw invalidArgType('data', 'a Uint8Array', data)
    this.#assertOpen()
    if (this.#maxDatagramSize === 0) throw new QuicError(QuicErrorCode.DATAGRAMS_DISABLED, 'Datagrams are not enabled on this connection (both peers need datagrams: true)')
    if (data.byteLength > this.#maxDatagramSize) {
      throw new QuicError(QuicErrorCode.DATAGRAM_TOO_LARGE, `The datagram is ${data.byteLength} bytes; at most ${this.#maxDatagramSize} fit`)
    }
    return this.#native.sendDatagram(data)
  }

  /**
   * Sends one datagram as sendDatagram() does, waiting for room in the send queue while it is full
   * (the `'datagramDrain'` event) instead of returning false. Rejects with ERR_QUIC_ABORTED through
   * `signal`, and with the connection's error if it closes meanwhile.
   */
  async sendDatagramWait (data: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = checkSignal(checkOptions(options).signal)
    if (signal?.aborted === true) throw abortedError(signal, 'sendDatagramWait')
    while (!this.sendDatagram(data)) {
      await new Promise<void>((resolve, reject) => {
        const settle = (error?: Error): void => {
          this.off('datagramDrain', onDrain)
          this.off('close', onClose)
          signal?.removeEventListener('abort', onAbort)
          if (error === undefined) resolve()
          else reject(error)
        }
        const onDrain = (): void => { settle() }
        const onClose = (): void => { settle(this[kCloseError]() ?? closedError('The connection')) }
        const onAbort = (): void => { settle(abortedError(signal as AbortSignal, 'sendDatagramWait')) }
        this.on('datagramDrain', onDrain)
        this.on('close', onClose)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  /** MsQuic's figures for this connection (blocks for a moment: they are read on its thread). */
  stats (): QuicConnectionStats {
    this.#assertOpen()
    const stats = this.#native.stats()
    return { ...stats, datagramsDropped: stats.datagramsDropped + this.#datagramsDropped, openStreams: this.#openStreams }
  }

  /** Local streams opened but waiting for the peer to grant stream credit. */
  get blockedStreams (): number {
    return this.#blockedStreams
  }

  /** Peer streams received and not yet accepted. */
  get pendingStreams (): number {
    return this.#inbound.size
  }

  /** Resolves once the connection has closed, telling who closed it and why. Never rejects. */
  get closed (): Promise<QuicCloseInfo> {
    return this.#closed
  }

  /**
   * Opens a stream. If the peer's stream credit is used up, waits inside QUIC flow control for
   * more (see `blockedStreams` and the `streamsBlocked` event) rather than failing.
   */
  async openStream (options: OpenStreamOptions = {}): Promise<QuicStream> {
    return await this.openStreamWith(duplexFor(options), options)
  }

  /** Opens a stream as `openStream()` does, with the adapter `factory` makes (see {@link StreamAdapterFactory}). */
  async openStreamWith<T> (factory: StreamAdapterFactory<T>, options: OpenStreamOptions = {}): Promise<T> {
    const { body } = checkOptions(options)
    const signal = checkSignal(options.signal)
    if (body !== undefined && !(body instanceof Uint8Array)) throw invalidArgType('body', 'a Uint8Array', body)
    this.#assertOpen()
    if (isDraining(this.#state)) throw new QuicError(QuicErrorCode.CLOSED, 'The connection is closing')
    if (signal?.aborted === true) throw abortedError(signal, 'openStream')
    const unidirectional = options.unidirectional === true
    let handle: NativeStream
    try {
      handle = body === undefined
        ? this.#native.openStream(unidirectional)
        : this.#native.openStream(unidirectional, body, options.end === true)
    } catch (error) {
      throw this[kCloseError]() ?? error
    }
    const core = new StreamCore(handle, this, true, { waitForCredit: body === undefined, finSent: body !== undefined && options.end === true, unidirectional })
    this.#openStreams++
    this.#held.add(core)
    const adapter = factory(core)
    if (body === undefined) await this.#opened(core, signal)
    handOver(adapter)
    return adapter
  }

  // Waits for the peer's stream credit. The caller never gets an aborted stream, so it ends
  // without an 'error' nobody would hear.
  async #opened (core: StreamCore, signal: AbortSignal | undefined): Promise<void> {
    if (signal === undefined) {
      await core.opened
      return
    }
    const onAbort = (): void => { core.abort(0) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await core.opened
    } catch (error) {
      throw signal.aborted ? abortedError(signal, 'openStream') : error
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Sends `body` on a new stream with its FIN, in one native call, and resolves with the peer's
   * whole reply (collected natively up to `maxResponseBytes`, then handed over at once). The
   * request path for small RPCs; the server side is `serveRequests()`. Rejects with a QuicError:
   * ERR_QUIC_STREAM_RESET (with the peer's `errorCode`), ERR_QUIC_MESSAGE_TOO_LARGE (the stream is
   * then aborted with `RequestResetCode.MESSAGE_TOO_LARGE`), ERR_QUIC_ABORTED or ERR_QUIC_TIMEOUT
   * (`signal`, `timeout`: the stream is aborted with `RequestResetCode.CANCELLED`), or the
   * connection's error.
   */
  async request (body: Uint8Array | string, options: RequestOptions = {}): Promise<Buffer> {
    this.#assertOpen()
    if (isDraining(this.#state)) throw new QuicError(QuicErrorCode.CLOSED, 'The connection is closing')
    return await sendRequest(body, options, (data, limit) => {
      let handle: NativeStream
      try {
        handle = this.#native.openStream(false, data, true, limit)
      } catch (error) {
        throw this[kCloseError]() ?? error
      }
      this.#openStreams++
      return new StreamCore(handle, this, true, { finSent: true, unidirectional: false })
    })
  }

  /**
   * Serves the request path on this connection: every bidirectional stream the peer opens from now
   * on is collected natively to its FIN (up to `maxRequestBytes`) and handed to `handler(body,
   * info)` once; what the handler returns (or resolves with) is sent back with the FIN in one
   * native call, and a thrown error resets the stream (with the error's `errorCode` if it has
   * one). At most `concurrency` requests run at once: the stream credit is lowered to it, so the
   * rest wait inside QUIC's stream credit, except those the peer may still open on credit granted
   * before this call (up to the listener's `maxBidirectionalStreams`), which wait their turn here.
   * (`listener.serveRequests()` sets the credit before the handshake.) Streams already received
   * (and unidirectional ones) still come through acceptStream().
   */
  serveRequests (handler: RequestHandler, options: ServeRequestsOptions = {}): void {
    this.#assertOpen()
    if (this.#requests !== undefined) throw invalidState('serveRequests() was called already on this connection (or on its listener)')
    const server = new RequestServer<QuicConnection>(this, handler, options)
    this.#requests = server
    this.#native.serveRequests(server.maxRequestBytes)
    if (this.#state === 'open') this.setStreamLimits({ bidirectional: server.concurrency })
  }

  /**
   * The oldest peer stream not yet accepted; waits for one. Streams that arrived before this call,
   * or while the app was busy, are all here. Rejects with ERR_QUIC_CLOSED once the connection has
   * closed and no stream is left.
   */
  async acceptStream (options: AcceptStreamOptions = {}): Promise<QuicStream> {
    return await this.acceptStreamWith(duplexFor(options), options)
  }

  /** Accepts a stream as `acceptStream()` does, with the adapter `factory` makes (see {@link StreamAdapterFactory}). */
  async acceptStreamWith<T> (factory: StreamAdapterFactory<T>, options: AcceptStreamOptions = {}): Promise<T> {
    const { unidirectional } = checkOptions(options)
    const signal = checkSignal(options.signal)
    if (unidirectional !== undefined && typeof unidirectional !== 'boolean') throw invalidArgType('unidirectional', 'a boolean', unidirectional)
    const match = unidirectional === undefined ? undefined : unidirectional ? isUnidirectional : isBidirectional
    const adapter = factory(await this.#inbound.take(signal, match))
    handOver(adapter)
    return adapter
  }

  /** Yields peer streams as acceptStream() would, until the connection closes. */
  async * [Symbol.asyncIterator] (): AsyncGenerator<QuicStream, void, undefined> {
    while (true) {
      try {
        yield await this.acceptStream()
      } catch (error) {
        if (error instanceof QuicError && this.#state === 'closed') return
        throw error
      }
    }
  }

  /**
   * Changes the stream credit granted to the peer at runtime. Raising takes effect at once;
   * lowering withholds new credit until the peer's open streams fall below the new limit. (To
   * grant streams one by one instead, see StreamCredit.)
   */
  setStreamLimits (limits: { bidirectional?: number, unidirectional?: number }): void {
    if (typeof limits !== 'object' || limits === null) throw invalidArgType('limits', 'an object', limits)
    const check = (name: string, value: number | undefined): number => {
      if (value === undefined) return -1
      if (!Number.isInteger(value) || value < 0 || value > 65535) throw invalidArgValue(name, 'must be an integer from 0 to 65535', value, true)
      return value
    }
    this.#assertOpen()
    const bidirectional = check('bidirectional', limits.bidirectional)
    const unidirectional = check('unidirectional', limits.unidirectional)
    this.#native.setPeerStreamCounts(bidirectional, unidirectional)
    if (this.#streamLimits !== undefined) {
      if (bidirectional >= 0) this.#streamLimits.bidirectional = bidirectional
      if (unidirectional >= 0) this.#streamLimits.unidirectional = unidirectional
    }
  }

  /**
   * The stream limits last set (the settings the connection started with, until `setStreamLimits`);
   * undefined for an adopted connection whose limits this thread never set.
   */
  get streamLimits (): StreamLimits | undefined {
    return this.#streamLimits === undefined ? undefined : { ...this.#streamLimits }
  }

  /**
   * Closes the connection: the peer gets CONNECTION_CLOSE with `code`, every stream ends. Resolves
   * once closed. Calling it again, or on a closed connection, waits for the same close.
   */
  async close (options: CloseOptions = {}): Promise<QuicCloseInfo> {
    checkOptions(options)
    const code = options.code ?? 0
    checkErrorCode(code)
    if (this.#state === 'transferred') this.#assertOpen()
    if (options.graceful === true && this.#state === 'open') {
      const timeout = options.timeout ?? 30_000
      if (!Number.isInteger(timeout) || timeout < 0) throw invalidArgValue('timeout', 'must be a non-negative integer', timeout, true)
      this.#state = { draining: code }
      for (const core of this.#inbound.drain()) core.refuse(code)
      this.#inbound.close(() => closedError('The connection'))
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>(resolve => { this.#drained = resolve; if (this.#openStreams === 0) resolve() }),
        new Promise<void>(resolve => { timer = setTimeout(resolve, timeout) })
      ])
      clearTimeout(timer)
    }
    if (this.#state === 'connecting' || this.#state === 'open' || isDraining(this.#state)) {
      this.#state = 'closing'
      this.#closeInfo ??= { by: 'local', code: BigInt(code), reason: options.reason }
      this.#native.shutdown(code, false)
    }
    return await this.#closed
  }

  /**
   * Closes the connection at once and silently: no CONNECTION_CLOSE is sent (the peer notices at
   * its idle timeout), every stream ends quietly. `closed` resolves with `by: 'local'` and `error`.
   * Idempotent; use close() to tell the peer.
   */
  destroy (error?: Error): void {
    if (error !== undefined && !(error instanceof Error)) throw invalidArgType('error', 'an Error', error)
    if (this.#state === 'closed' || this.#state === 'closing' || this.#state === 'transferred') return
    this.#state = 'closing'
    this.#closeInfo ??= { by: 'local', code: 0n, reason: 'destroyed', error: error === undefined ? undefined : asQuicError(error) }
    this.#native.shutdown(0, true)
  }

  /** @internal */
  get [kConnected] (): Promise<void> {
    if (this.#handshake !== undefined) return this.#handshake
    if (this.#state !== 'connecting') return this.#state === 'open' ? Promise.resolve() : Promise.reject(this[kCloseError]() ?? closedError('The connection'))
    this.#handshake = new Promise((resolve, reject) => { this.#connected = { resolve, reject } })
    return this.#handshake
  }

  /** @internal The app took this connection from its listener's backlog. */
  [kTaken] (): void {
    this.#native.taken()
  }

  /** @internal Why the connection closed, as an error (undefined while open or after a clean close). */
  [kCloseError] (): QuicError | undefined {
    if (this.#closeInfo === undefined) return undefined
    return this.#closeInfo.error ?? closedError('The connection')
  }

  /** @internal A stream of this connection reached its final event. */
  [kStreamClosed] (core: StreamCore): void {
    this.#held.delete(core)
    this.#openStreams--
    if (this.#openStreams === 0) this.#drained?.()
  }

  /** @internal A stream of this connection moved to another thread: it no longer counts here. */
  [kStreamMoved] (core: StreamCore): void {
    this[kStreamClosed](core)
  }

  /** @internal Whether this side's app closed the connection. */
  [kClosedByApp] (): boolean {
    return this.#closeInfo?.by === 'local'
  }

  /** @internal */
  [kStreamBlocked] (_core: StreamCore, blocked: boolean): void {
    this.#blockedStreams += blocked ? 1 : -1
    this.emit('streamsBlocked', this.#blockedStreams)
  }

  /** @internal Runs on the JS thread for each native event of this connection, in order. */
  [kOnNativeEvent] (type: number, status: number, value: number | bigint, code: number | bigint, extra: unknown): void {
    switch (type) {
      case Ev.ConnectionPeerStream: {
        const flags = Number(value)
        const core = new StreamCore(extra as NativeStream, this, false, { unidirectional: (flags & PeerStreamFlag.Unidirectional) !== 0, id: Number(code) })
        if ((flags & PeerStreamFlag.Request) !== 0) {
          this.#openStreams++
          if (this.#requests !== undefined) this.#requests.arrived(core)
          else core.refuse(0)
        } else {
          this.#arrived(core)
        }
        break
      }
      case Ev.ConnectionDatagram:
        this.#receivedDatagram(extra as Buffer)
        break
      case Ev.ConnectionDatagramDrain:
        this.emit('datagramDrain')
        break
      case Ev.ConnectionDatagramState:
        this.#maxDatagramSize = Number(value)
        this.emit('datagramState', { maxSize: this.#maxDatagramSize })
        break
      case Ev.ConnectionPeerAddressChanged:
        if (this.#info !== undefined) this.#info = { ...this.#info, remoteAddress: extra as NativeAddress }
        this.emit('peerAddressChanged', extra as NativeAddress)
        break
      case Ev.ConnectionResumptionTicket:
        this.#sessionTicket = extra as Buffer
        this.emit('sessionTicket', this.#sessionTicket)
        break
      case Ev.ConnectionConnected:
        // A resumed server connection: its client's certificate, out of the ticket this server
        // issued when it was verified (TLS 1.3 resumption sends none; verifyPeer does not run again).
        if (Buffer.isBuffer(extra)) this.#peerCertificate = extra
        this.#info = this.#native.info()
        if (this.#state === 'connecting') this.#state = 'open'
        this.#connected?.resolve()
        this.#connected = undefined
        this.#onConnected?.(this)
        break
      case Ev.ConnectionStartFailed:
        // The start ran on the runtime's blocking-calls thread and failed; the connection's silent
        // shutdown (and its final event) follows.
        this.#closeInfo ??= { by: 'transport', code: 0n, error: errorFromStatus(native.statusName(status), status, 'The connection could not start') }
        break
      case Ev.ConnectionShutdownByTransport:
        this.#closeInfo ??= {
          by: 'transport',
          code: BigInt(code),
          error: typeof extra === 'string'
            ? new QuicError(QuicErrorCode.CERTIFICATE, extra, { status, statusName: native.statusName(status) })
            : !this.#server && this.#state === 'connecting' && APPLICATION_ERRORS.has(BigInt(code))
              // The server's application closed it before the handshake completed (during the
              // handshake QUIC hides the application's code behind APPLICATION_ERROR): a refusal,
              // as from a server's `admit`.
              ? new QuicError(QuicErrorCode.CONNECTION_REFUSED, 'The server refused the connection before its handshake completed', { status, statusName: native.statusName(status) })
              : errorFromStatus(native.statusName(status), status, 'The connection was closed by the transport')
        }
        break
      case Ev.ConnectionShutdownByPeer:
        this.#closeInfo ??= {
          by: 'peer',
          code: BigInt(code),
          error: BigInt(code) === 0n ? undefined : new QuicError(QuicErrorCode.PEER_CLOSED, `The peer closed the connection (code ${code})`, { errorCode: code })
        }
        break
      case Ev.ConnectionShutdownComplete:
        this.#onClosed()
        break
      case Ev.ConnectionStreamsAvailable:
        this.emit('streamsAvailable', { bidirectional: Number(value), unidirectional: Number(code) })
        break
      case Ev.ConnectionPeerNeedsStreams:
        this.emit('peerNeedsStreams', { bidirectional: value === 1 })
        break
      case Ev.ConnectionPeerCertificate:
        this.#verify(extra as Buffer | undefined)
        break
    }
  }

  #receivedDatagram (data: Buffer): void {
    const early = this.#earlyDatagrams
    if (early === undefined || this.listenerCount('datagram') > 0) {
      this.emit('datagram', data)
    } else if (early.length < EARLY_DATAGRAMS) {
      if (early.length === 0) (this as EventEmitter).once('newListener', this.#onFirstListener)
      early.push(data)
    } else {
      this.#datagramsDropped++
    }
  }

  // The first listener of any event: if it is for datagrams, the early ones go to it (after it is
  // added, on the next tick), and from then on datagrams are emitted as they come.
  readonly #onFirstListener = (event: string | symbol): void => {
    if (event !== 'datagram') {
      (this as EventEmitter).once('newListener', this.#onFirstListener)
      return
    }
    const early = this.#earlyDatagrams ?? []
    this.#earlyDatagrams = undefined
    process.nextTick(() => { for (const data of early) this.emit('datagram', data) })
  }

  #verify (der: Buffer | undefined): void {
    const verifyPeer = this.#verifyPeer
    this.#peerCertificate = der
    const answer = (accept: boolean): void => { this.#native.completeCertificateValidation(accept) }
    if (verifyPeer === undefined) {
      answer(false)
      return
    }
    Promise.resolve()
      .then(() => verifyPeer({ der }))
      .then(result => answer(result === true), () => answer(false))
  }

  #onClosed (): void {
    if (this.#state !== 'closed') connectionGone()
    this.#state = 'closed'
    const info: QuicCloseInfo = this.#closeInfo ?? { by: 'local', code: 0n }
    this.#closeInfo = info
    // The errors are made only for someone waiting (a stack trace per closed connection showed in
    // connection setup's profile).
    const error = (): QuicError => this[kCloseError]() as QuicError
    this.#connected?.reject(info.error ?? error())
    this.#inbound.close(error)
    this.#resolveClosed(info)
    this.emit('close', info)
  }

  #arrived (core: StreamCore): void {
    this.#openStreams++
    // While closing gracefully, streams the peer still opens are refused.
    if (isDraining(this.#state)) core.refuse(this.#state.draining)
    else this.#inbound.push(core)
  }

  #assertOpen (): void {
    if (this.#state === 'transferred') throw new QuicError(QuicErrorCode.TRANSFERRED, 'The connection moved to another thread; use the object adopt() made there')
    if (this.#state === 'closing' || this.#state === 'closed') throw this[kCloseError]() ?? closedError('The connection')
  }
}

/**
 * The app has the adapter from now on. An adapter that reports failures as events (the Duplex:
 * Node emits 'error' on nextTick, before the awaiting code could listen) implements [kHandOver]
 * and starts reporting once that code has run.
 */
function handOver (adapter: unknown): void {
  (adapter as { [kHandOver]?: () => void })[kHandOver]?.()
}

function asQuicError (error: Error): QuicError {
  return error instanceof QuicError ? error : new QuicError(QuicErrorCode.ABORTED, error.message, { cause: error })
}

// Datagrams kept for a connection nobody listens to yet (the native receive queue's default size).
const EARLY_DATAGRAMS = 1024

/**
 * A connection's life (docs/lifecycle.md): `draining` is a graceful close waiting for the open
 * streams, and carries the code its CONNECTION_CLOSE will send (new peer streams are refused with it).
 */
type ConnectionState = 'connecting' | 'open' | { readonly draining: number | bigint } | 'closing' | 'closed' | 'transferred'

const isDraining = (state: ConnectionState): state is { readonly draining: number | bigint } => typeof state === 'object'

const isUnidirectional = (core: StreamCore): boolean => core.unidirectional
const isBidirectional = (core: StreamCore): boolean => !core.unidirectional
