/**
 * QuicListener and listen(). Every connection whose handshake completes is queued the moment it
 * does, whether or not anyone is calling accept(); accept() takes the oldest. Two native bounds
 * guard it: `backlog` (established connections not yet accepted) and `maxHandshakes` (connections
 * still handshaking); beyond either, new connections are refused on the wire and counted. When
 * handshakes pile up (`retryAbove`), new clients must first pass a stateless Retry. `admit`
 * decides on each connection before its handshake starts. JS thread.
 */
import { ConnectionCode } from '../codes.js'
import { EventEmitter } from 'node:events'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { checkOptions, checkSignal, invalidArgType, invalidArgValue, invalidState } from '../args.js'
import { closedError } from '../errors.js'
import { Ev, kOnNativeEvent, runtime, type NativeAddress, type NativeConnection, type NativeListener } from '../native.js'
import { AcceptQueue } from './accept-queue.js'
import { DEFAULTS, alpnList, createConfiguration, nativeSettings, port, type QuicSettings, type TlsOptions, type VerifyPeer } from './config.js'
import { QuicConnection, type RequestHandler, type StreamLimits } from './connection.js'
import { checkServeRequests, type ServeRequestsOptions } from './request.js'
import { kTaken } from './symbols.js'

export interface ListenOptions extends TlsOptions, QuicSettings {
  /** Address or host name to listen on. Default: every address (IPv4 and IPv6). */
  host?: string
  /** UDP port; 0 (the default) picks a free one (see `address()`). */
  port?: number
  /**
   * Established connections not yet accepted; while that many wait, new connections are refused.
   * Default 512. Connections still handshaking do not count (see `maxHandshakes`).
   */
  backlog?: number
  /**
   * Connections handshaking at once; beyond it new ones are refused (and counted) until some
   * complete or time out (`handshakeTimeout`). Default 1024.
   */
  maxHandshakes?: number
  /**
   * From this many handshakes in progress on, every new client must first prove its address with a
   * stateless Retry (one extra round trip; spoofed or replayed Initials then cost the listener one
   * packet and no state) until they fall to half of it. 0: always; false: never. Default 128.
   * Retry is process-wide in MsQuic: while any listener asks for it, every listener sends it.
   */
  retryAbove?: number | false
  /**
   * Decides on each new connection before its handshake starts (nothing is signed or sent before
   * the answer). Return false (or reject) to refuse it: the client gets a CONNECTION_CLOSE with
   * `AdmissionRefusedCode` and the refusal is counted in `stats().refusedBy.admission`. Costs one
   * trip through the event loop per connection; the native bounds above apply first.
   */
  admit?: AdmitConnection
  /** Ask clients for a certificate and require one. Checked against `ca`, or by `verifyPeer`. */
  requestCert?: boolean
  /** PEM CA certificate(s) that client certificates must chain to (with `requestCert`). */
  ca?: string | Buffer | Array<string | Buffer>
  /**
   * Session resumption: send each client a session ticket after its handshake, and let clients
   * resume with one (a shorter handshake). `'0rtt'` also accepts 0-RTT data from resuming clients:
   * requests that arrive before the handshake completes, which an attacker can replay; take them
   * only for requests that are safe to repeat. Default false.
   */
  sessionTickets?: boolean | '0rtt'
}

/** What `admit` is told about a new connection (from the client's first packet). */
export interface IncomingConnection {
  /** The `id` of the QuicConnection being admitted (keys what admission holds for it). */
  id: number
  remoteAddress: NativeAddress
  localAddress: NativeAddress
  /** The name the client asked for (SNI), if any. */
  serverName?: string
  /** Settles once the connection has closed, whatever the verdict (to release what admission took). */
  closed: Promise<void>
}

/** Decides on a new connection before its handshake: true admits it. */
export type AdmitConnection = (connection: IncomingConnection) => boolean | Promise<boolean>

/**
 * The application error code a connection refused by `admit` is closed with: libp2p's
 * RESOURCE_LIMIT_EXCEEDED connection code (src/codes.ts), which says what happened to any peer.
 */
export const AdmissionRefusedCode = ConnectionCode.RESOURCE_LIMIT_EXCEEDED

export interface ListenerStats {
  /** Connections received and not yet accepted: `handshaking` + `waiting`. */
  pending: number
  /** Connections still handshaking (admission included). */
  handshaking: number
  /** Established connections waiting for accept(). */
  waiting: number
  /** New connections refused, for any reason. */
  refused: number
  /** Refusals by reason: too many handshakes, a full backlog, or `admit`. */
  refusedBy: { handshakes: number, backlog: number, admission: number }
  /** Whether new clients must pass a stateless Retry now (see `retryAbove`; process-wide). */
  retrying: boolean
  /** Connections MsQuic accepted, in total (absent once the listener is closed). */
  accepted?: number
  /** Connections MsQuic rejected, in total (backlog refusals included). */
  rejected?: number
  /** Packets the listener's socket dropped on receive. */
  droppedPackets?: number
}

export class QuicListener extends EventEmitter<{ close: [] }> {
  readonly #native: NativeListener
  #serving: { handler: RequestHandler, options: ServeRequestsOptions } | undefined
  readonly #queue = new AcceptQueue<QuicConnection>('accept', connection => connection[kTaken]())
  readonly #closed: Promise<void>
  readonly #verifyPeer?: VerifyPeer
  readonly #admit?: AdmitConnection
  readonly #handshaking = new Set<QuicConnection>()
  #resolveClosed!: () => void
  #closing = false
  /** The stream limits each connection starts with (`maxBidirectionalStreams`, `maxUnidirectionalStreams`). */
  readonly streamLimits: StreamLimits

  /** @internal Made by listen(). */
  constructor (handle: NativeListener, streamLimits: StreamLimits, verifyPeer?: VerifyPeer, admit?: AdmitConnection) {
    super()
    this.#native = handle
    this.streamLimits = Object.freeze({ ...streamLimits })
    this.#verifyPeer = verifyPeer
    this.#admit = admit
    this.#closed = new Promise(resolve => { this.#resolveClosed = resolve })
    handle.owner = this
  }

  /** The bound address, as node:net's `server.address()` reports it. */
  address (): NativeAddress {
    const address = this.#native.address()
    if (address === null) throw closedError('The listener')
    return address
  }

  /** Backlog figures. */
  stats (): ListenerStats {
    const { handshaking, established, refusedHandshakes, refusedBacklog, refusedAdmission, ...rest } = this.#native.stats()
    return {
      pending: handshaking + established,
      handshaking,
      waiting: established,
      refused: refusedHandshakes + refusedBacklog + refusedAdmission,
      refusedBy: { handshakes: refusedHandshakes, backlog: refusedBacklog, admission: refusedAdmission },
      ...rest
    }
  }

  /** Connections waiting for accept(). */
  get pendingConnections (): number {
    return this.#queue.size
  }

  /** Resolves once the listener has stopped. */
  get closed (): Promise<void> {
    return this.#closed
  }

  /**
   * The oldest connection not yet accepted; waits for one. Rejects with ERR_QUIC_CLOSED once the
   * listener is closed, and with ERR_QUIC_ABORTED if `signal` aborts first (nothing is lost then).
   */
  async accept (options: { signal?: AbortSignal } = {}): Promise<QuicConnection> {
    const signal = checkSignal(checkOptions(options).signal)
    return await this.#queue.take(signal)
  }

  /** Yields connections as accept() would, until the listener closes. */
  async * [Symbol.asyncIterator] (): AsyncGenerator<QuicConnection, void, undefined> {
    while (!this.#closing) {
      try {
        yield await this.accept()
      } catch (error) {
        if (this.#closing) return
        throw error
      }
    }
  }

  /**
   * Stops listening. Pending accept() calls reject with ERR_QUIC_CLOSED; connections not yet
   * accepted are closed; accepted ones stay open. Idempotent; resolves once stopped.
   */
  async close (): Promise<void> {
    if (!this.#closing) {
      this.#closing = true
      this.#queue.close(closedError('The listener'))
      for (const connection of this.#queue.drain()) {
        connection[kTaken]()
        void connection.close()
      }
      // Still handshaking: the native backlog forgets them when they close.
      for (const connection of this.#handshaking) void connection.close()
      this.#handshaking.clear()
      this.#native.stop()
    }
    await this.#closed
  }

  /**
   * Serves the request path on every connection that arrives from now on (see
   * `QuicConnection.serveRequests()`): the listener accepts them itself, so do not also call
   * accept(). Their peer streams are collected natively from the first one on, and each grants
   * the peer exactly `concurrency` streams from its handshake on, so requests beyond it wait
   * inside QUIC's stream credit.
   */
  serveRequests (handler: RequestHandler, options: ServeRequestsOptions = {}): void {
    if (this.#closing) throw closedError('The listener')
    if (this.#serving !== undefined) throw invalidState('serveRequests() was called already on this listener')
    // Checks every argument before anything starts (the same checks each connection repeats).
    const { maxRequestBytes, concurrency } = checkServeRequests(handler, options)
    this.#serving = { handler, options }
    this.#native.serveRequests(maxRequestBytes, concurrency)
    // Accepted only to leave the backlog: each serves from its first stream on (see the constructor).
    void (async () => { for await (const _connection of this); })()
  }

  /** @internal Runs on the JS thread for each native event of this listener, in order. */
  [kOnNativeEvent] (type: number, _status: number, value: number | bigint, _code: number | bigint, extra: unknown): void {
    if (type === Ev.ListenerConnection) {
      const native = extra as NativeConnection
      const connection = new QuicConnection(native, {
        server: true,
        streamLimits: this.streamLimits,
        verifyPeer: this.#verifyPeer,
        onConnected: connection => this.#onConnected(connection),
        requests: this.#serving
      })
      if (this.#closing) {
        void connection.close()
        return
      }
      this.#handshaking.add(connection)
      // A handshake that fails never reaches accept(); MsQuic's backlog count drops it natively.
      void connection.closed.then(() => this.#handshaking.delete(connection))
      if (value === 1) this.#decide(connection, native)
    } else if (type === Ev.ListenerStopped) {
      this.#closing = true
      this.#queue.close(closedError('The listener'))
      this.#resolveClosed()
      this.emit('close')
    }
  }

  // Deferred admission: the handshake waits natively for the verdict. A throwing or rejecting
  // `admit` refuses (the connection must not hang until its handshake timeout).
  #decide (connection: QuicConnection, native: NativeConnection): void {
    const admit = this.#admit as AdmitConnection
    const verdict = (accept: unknown): void => { native.admit(accept === true && !this.#closing, AdmissionRefusedCode) }
    let answer: boolean | Promise<boolean>
    try {
      answer = admit({ ...native.peer(), id: connection.id, closed: connection.closed.then(() => {}, () => {}) })
    } catch {
      verdict(false)
      return
    }
    if (typeof answer === 'boolean') verdict(answer)
    else Promise.resolve(answer).then(verdict, () => verdict(false))
  }

  #onConnected (connection: QuicConnection): void {
    if (!this.#handshaking.delete(connection)) return
    if (this.#closing) {
      connection[kTaken]()
      void connection.close()
      return
    }
    this.#queue.push(connection)
  }
}

/** Resolves a host to an IP literal ('' for "every address"). */
export async function resolveHost (host: string | undefined): Promise<string> {
  if (host === undefined || host === '' || host === '::' || host === '0.0.0.0') return host === '0.0.0.0' ? host : ''
  if (typeof host !== 'string') throw invalidArgType('host', 'a string', host)
  if (isIP(host) !== 0) return host
  return (await lookup(host)).address
}

/** Starts a QUIC listener. */
export async function listen (options: ListenOptions): Promise<QuicListener> {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
  const alpn = alpnList(options.alpn)
  const listenPort = port(options.port ?? 0, true)
  const backlog = options.backlog ?? DEFAULTS.backlog
  if (!Number.isInteger(backlog) || backlog < 1 || backlog > 2 ** 31) throw invalidArgValue('backlog', 'must be a positive integer', backlog, true)
  const maxHandshakes = options.maxHandshakes ?? DEFAULTS.maxHandshakes
  if (!Number.isInteger(maxHandshakes) || maxHandshakes < 1 || maxHandshakes > 2 ** 31) throw invalidArgValue('maxHandshakes', 'must be a positive integer', maxHandshakes, true)
  const retryAbove = options.retryAbove ?? DEFAULTS.retryAbove
  if (retryAbove !== false && (!Number.isInteger(retryAbove) || retryAbove < 0 || retryAbove > 2 ** 31)) {
    throw invalidArgValue('retryAbove', 'must be an integer from 0 or false', retryAbove, typeof retryAbove === 'number')
  }
  if (options.admit !== undefined && typeof options.admit !== 'function') throw invalidArgType('admit', 'a function', options.admit)
  if (options.verifyPeer !== undefined && typeof options.verifyPeer !== 'function') throw invalidArgType('verifyPeer', 'a function', options.verifyPeer)
  const { settings, budget, datagramQueue } = nativeSettings(options)
  const tickets = options.sessionTickets ?? false
  if (tickets !== true && tickets !== false && tickets !== '0rtt') throw invalidArgValue('sessionTickets', "must be a boolean or '0rtt'", tickets)
  // MsQuic's ServerResumptionLevel: RESUME_ONLY (1) or RESUME_AND_ZERORTT (2).
  if (tickets !== false) settings.serverResumptionLevel = tickets === '0rtt' ? 2 : 1
  const ip = await resolveHost(options.host)
  const requestCert = options.requestCert === true || options.verifyPeer !== undefined
  const configuration = createConfiguration({
    client: false,
    cert: options.cert,
    key: options.key,
    ca: options.ca,
    verify: options.verifyPeer !== undefined ? 'custom' : 'builtin',
    requestClientCertificate: requestCert,
    alpn,
    settings
  })
  const limits = { bidirectional: settings.peerBidiStreamCount, unidirectional: settings.peerUnidiStreamCount }
  const native = new (runtime().Listener)(configuration, ip, listenPort, backlog, budget, datagramQueue,
    maxHandshakes, retryAbove === false ? -1 : retryAbove, options.admit !== undefined)
  return new QuicListener(native, limits, options.verifyPeer, options.admit)
}
