/**
 * The libp2p v3 transport: dials and listens on QUIC v1 multiaddrs, authenticates peers with the
 * libp2p TLS certificate inside the handshake, and hands js-libp2p connections whose streams are
 * native QUIC streams (no encryption or muxer upgrade on top).
 */
import { serviceCapabilities, transportSymbol, TypedEventEmitter, type ComponentLogger, type Connection, type Stream, type ConnectionGater, type CreateListenerOptions, type DialTransportOptions, type Listener, type ListenerEvents, type Logger, type Metrics, type PeerId, type PrivateKey, type Transport, type Upgrader } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { invalidArgType, invalidArgValue } from '../args.js'
import { QuicError, QuicErrorCode } from '../errors.js'
import { DEFAULTS as QUIC_DEFAULTS, type QuicSettings } from '../quic/config.js'
import { connect } from '../quic/connect.js'
import type { QuicConnection } from '../quic/connection.js'
import { listen, type QuicListener } from '../quic/listener.js'
import type { Reservation } from '../limits/transient.js'
import { InboundAdmission, type AdmissionOptions } from './admission.js'
import { createLibp2pCertificate, verifyLibp2pCertificate, type Libp2pCertificate } from './certificate.js'
import { ConnectionCloseCode, Libp2pQuicError, Libp2pQuicErrorCode } from './errors.js'
import { SessionTickets } from './tickets.js'
import { connections, quicConnectionOf } from './connections.js'
import { expandWildcard, parseQuicAddress, quicMultiaddr, quicV1Filter, type QuicAddress } from './multiaddr.js'
import { MsQuicMultiaddrConnection, MsQuicMuxerFactory } from './muxer.js'
import { LAZY_NEGOTIATION_MARKER, NegotiationGate, type NegotiationOptions, type PeerNegotiations } from './negotiation.js'
import { ConnectionReservations } from './reservations.js'

/** ALPN of libp2p over QUIC (libp2p/specs quic/README.md). */
export const LIBP2P_ALPN = 'libp2p'

/**
 * The transport's own defaults; the rest are the QUIC layer's (QUIC_DEFAULTS). More streams than a
 * raw QUIC connection grants (js-libp2p nodes run several protocols on one connection), and
 * keep-alives, which libp2p connections are expected to have.
 */
export const LIBP2P_DEFAULTS = {
  maxStreams: 256,
  keepAliveInterval: 5_000
} as const

export interface MsQuicTransportOptions {
  /** Streams the peer may have open at once on a connection (QUIC stream credit). Default 256. */
  maxStreams?: number
  /** Milliseconds without activity before a connection closes. Default 30000. */
  idleTimeout?: number
  /** Milliseconds between keep-alive packets. Default 5000 (0: off). */
  keepAliveInterval?: number
  /** Milliseconds the handshake may take. Default 10000. */
  handshakeTimeout?: number
  /** Per-stream and connection receive windows and the per-stream receive budget (see QuicSettings). */
  streamReceiveWindow?: number
  connectionReceiveWindow?: number
  streamReceiveBudget?: number
  /** 'cubic' (default) or 'bbr'. */
  congestionControl?: 'cubic' | 'bbr'
  /** Enable RFC 9221 datagrams (reachable through `connection.quic`); both peers must. Default false. */
  datagrams?: boolean
  /** Connections received but not yet upgraded before new ones are refused natively. Default 512. */
  backlog?: number
  /** Read buffer limit of a stream whose consumer is paused (the rest waits in QUIC flow control). Default 4 MiB. */
  maxReadBufferLength?: number
  /**
   * Bounded protocol negotiation (see NegotiationOptions), on by default; false leaves every
   * stream to js-libp2p's own multistream-select.
   */
  negotiation?: NegotiationOptions | false
  /**
   * Inbound admission before the QUIC handshake (see AdmissionOptions): js-libp2p's deny/allow
   * lists, `maxIncomingPendingConnections`, `inboundConnectionThreshold` and the connection gater,
   * read from the node unless given here, plus an optional transient-connection budget. On by
   * default; false admits every connection to its handshake (js-libp2p still checks after it).
   */
  admission?: AdmissionOptions | false
  /**
   * Session resumption. true (default): listeners issue session tickets (each carrying the
   * client's certificate, so that a resumed connection still knows its peer), and dials resume
   * with the last ticket each address gave (SessionTickets: the peer id comes from the handshake
   * the ticket came from; no certificate is sent or verified again). '0rtt': listeners also take
   * 0-RTT data (see `earlyData`). false: neither.
   */
  sessionTickets?: boolean | '0rtt'
  /**
   * Dials that resume hand the connection to js-libp2p as soon as it can carry 0-RTT data, so
   * that its first streams go in the first flight (refused early data is sent again after the
   * handshake). Default false. Such a dial resolves before the peer has answered: a peer that is
   * gone shows only at the handshake timeout. 0-RTT data can be replayed by an attacker on the path: a node-msquic
   * listener hands a connection's streams to js-libp2p only once its handshake completed, which a
   * replay never does, so its handlers never see a replay; other implementations may process early
   * data at once (then only idempotent requests belong in it).
   */
  earlyData?: boolean
}

export interface MsQuicTransportComponents {
  privateKey: PrivateKey
  logger: ComponentLogger
  /**
   * The protocols inbound streams are negotiated against (without it js-libp2p negotiates them);
   * `handle` registers LAZY_NEGOTIATION_MARKER, so that identify announces it.
   */
  registrar?: { getProtocols: () => string[], handle?: (protocol: string, handler: (stream: Stream) => void) => Promise<void> }
  /** The node's events: 'peer:identify' tells which peers take lazy proposals. */
  events?: { addEventListener: (type: 'peer:identify', listener: (event: CustomEvent<{ protocols: string[], connection: Connection }>) => void) => void }
  metrics?: Metrics
  /** js-libp2p's connection manager: its inbound limits are read for admission (see AdmissionOptions). */
  connectionManager?: unknown
  connectionGater?: ConnectionGater
}

export { quicConnectionOf }

export class MsQuicTransport implements Transport {
  readonly [Symbol.toStringTag] = '@node-msquic/libp2p'
  readonly [transportSymbol] = true
  readonly [serviceCapabilities] = ['@libp2p/transport']
  readonly listenFilter = quicV1Filter
  readonly dialFilter = quicV1Filter
  readonly #components: MsQuicTransportComponents
  readonly #options: MsQuicTransportOptions
  readonly #log: Logger
  #credentials: Promise<Libp2pCertificate> | undefined
  // Each connection's share of the negotiation limits, found again on identify.
  readonly #peers = new WeakMap<QuicConnection, PeerNegotiations>()
  /** The negotiation limits and counters (undefined with `negotiation: false`). */
  readonly negotiation: NegotiationGate | undefined
  /** The session tickets dials resume with (undefined with `sessionTickets: false`). */
  readonly sessionTickets: SessionTickets | undefined
  /** Each connection's one transient reservation (with `admission.transient`; see ConnectionReservations). */
  readonly reservations: ConnectionReservations | undefined

  constructor (components: MsQuicTransportComponents, options: MsQuicTransportOptions = {}) {
    this.#components = components
    this.#options = options
    this.#log = components.logger.forComponent('libp2p:msquic')
    this.negotiation = options.negotiation === false ? undefined : new NegotiationGate(options.negotiation, components.metrics, options.maxStreams ?? 256)
    const tickets = options.sessionTickets ?? true
    if (tickets !== true && tickets !== false && tickets !== '0rtt') throw invalidArgValue('sessionTickets', "must be a boolean or '0rtt'", tickets)
    if (options.earlyData !== undefined && typeof options.earlyData !== 'boolean') throw invalidArgType('earlyData', 'a boolean', options.earlyData)
    this.sessionTickets = tickets === false ? undefined : new SessionTickets()
    const admission = options.admission === false ? undefined : options.admission
    this.reservations = admission?.transient === undefined ? undefined : new ConnectionReservations(admission.transient, admission.promoteOnUpgrade)
    if (this.negotiation !== undefined) this.#announceLazyNegotiation(components)
  }

  /**
   * Our listener negotiates inbound streams itself and takes lazy proposals, FIN included: the
   * marker protocol tells peers so through identify, and a peer's identify showing it makes our
   * dialer lazy towards that peer (NegotiationOptions.lazyDial).
   */
  #announceLazyNegotiation (components: MsQuicTransportComponents): void {
    // The marker is never opened: a stream to it is refused.
    void components.registrar?.handle?.(LAZY_NEGOTIATION_MARKER, stream => { stream.abort(new Error('A capability marker, not a protocol')) })
      .catch(() => {})
    if (this.negotiation?.lazyDial === false) return
    components.events?.addEventListener('peer:identify', event => {
      const { protocols, connection } = event.detail
      if (!protocols.includes(LAZY_NEGOTIATION_MARKER)) return
      const quic = quicConnectionOf(connection)
      if (quic !== undefined) this.#peers.get(quic)?.takesLazyProposals(protocols)
    })
  }

  /**
   * The transient reservation a connection of this transport holds until it closes (a libp2p
   * connection, or its QUIC connection), if any: the manager's owner promotes it through this when
   * it learns the peer (`admission.promoteOnUpgrade: false`).
   */
  reservationOf (connection: Connection | QuicConnection): Reservation<unknown> | undefined {
    const quic = 'remoteAddr' in connection ? quicConnectionOf(connection) : connection
    return quic === undefined ? undefined : this.reservations?.of(quic.id)
  }

  /** @internal The certificate every connection of this transport presents (the spec allows reuse). */
  async credentials (): Promise<Libp2pCertificate> {
    this.#credentials ??= createLibp2pCertificate(this.#components.privateKey)
    return await this.#credentials
  }

  /** @internal */
  settings (): QuicSettings {
    const o = this.#options
    return {
      maxBidirectionalStreams: o.maxStreams ?? LIBP2P_DEFAULTS.maxStreams,
      maxUnidirectionalStreams: 0,
      idleTimeout: o.idleTimeout ?? QUIC_DEFAULTS.idleTimeout,
      keepAliveInterval: o.keepAliveInterval ?? LIBP2P_DEFAULTS.keepAliveInterval,
      handshakeTimeout: o.handshakeTimeout ?? QUIC_DEFAULTS.handshakeTimeout,
      streamReceiveWindow: o.streamReceiveWindow,
      connectionReceiveWindow: o.connectionReceiveWindow,
      streamReceiveBudget: o.streamReceiveBudget,
      congestionControl: o.congestionControl,
      datagrams: o.datagrams
    }
  }

  /** @internal */
  muxerFactory (connection: QuicConnection, direction: 'inbound' | 'outbound'): MsQuicMuxerFactory {
    const registrar = this.#components.registrar
    const peer = this.negotiation?.peer()
    if (peer !== undefined) this.#peers.set(connection, peer)
    return new MsQuicMuxerFactory({
      connection,
      logger: this.#components.logger,
      name: `libp2p:msquic:${direction}`,
      maxReadBufferLength: this.#options.maxReadBufferLength,
      negotiation: peer === undefined
        ? undefined
        : { peer, protocols: registrar === undefined ? undefined : () => registrar.getProtocols() }
    })
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    options.signal?.throwIfAborted()
    const address = parseQuicAddress(ma)
    const { cert, key } = await this.credentials()
    this.#log.trace('dialing %s', ma.toString())
    const resume = this.sessionTickets?.get(address)
    const earlyData = resume !== undefined && this.#options.earlyData === true
    // With early data js-libp2p is told the ticket's peer before the handshake: a server that
    // declines the ticket must turn out to be that peer.
    const expected = address.peerId ?? (earlyData ? resume.peer.toString() : undefined)
    let remotePeer: PeerId | undefined
    let refusal: Error | undefined
    const verifyPeer = async ({ der }: { der?: Buffer }): Promise<boolean> => {
      try {
        if (der === undefined) throw new Libp2pQuicError(Libp2pQuicErrorCode.CERTIFICATE, 'The peer sent no certificate')
        const peer = await verifyLibp2pCertificate(der)
        if (expected !== undefined && peer.toString() !== expected) {
          throw new Libp2pQuicError(Libp2pQuicErrorCode.PEER_MISMATCH, `Dialed ${expected} but ${peer.toString()} answered at ${ma.toString()}`)
        }
        remotePeer = peer
        return true
      } catch (error) {
        refusal = error as Error
        return false
      }
    }
    let connection: QuicConnection
    try {
      connection = await connect({
        ...this.settings(),
        host: address.host,
        port: address.port,
        alpn: LIBP2P_ALPN,
        cert,
        key,
        verifyPeer,
        ...(resume === undefined ? {} : { sessionTicket: resume.ticket, earlyData }),
        signal: options.signal
      })
    } catch (error) {
      // A refused certificate fails the handshake; say why it was refused.
      throw refusal ?? error
    }
    // Resumed (or resuming, with early data): no certificate came; the ticket's peer it is.
    if (remotePeer === undefined && resume !== undefined && (connection.sessionResumed || connection.earlyData)) remotePeer = resume.peer
    if (remotePeer !== undefined && this.sessionTickets !== undefined) this.#keepTickets(connection, address, remotePeer)
    if (remotePeer === undefined) {
      connection.destroy()
      throw new Libp2pQuicError(Libp2pQuicErrorCode.CERTIFICATE, 'The peer was not authenticated')
    }
    const remote = connection.remoteAddress
    // The reservation is keyed by the connection, which exists from here: a dial over the budget
    // costs one handshake, and is closed at once.
    if (this.reservations?.reserve(connection.id, remote?.address ?? address.host, false, connection.closed) === null) {
      void connection.close({ code: ConnectionCloseCode.RESOURCE_LIMIT_EXCEEDED }).catch(() => {})
      throw new Libp2pQuicError(Libp2pQuicErrorCode.TRANSIENT_LIMIT, `Too many transient connections to dial ${ma.toString()}`)
    }
    const maConn = new MsQuicMultiaddrConnection({
      connection,
      remoteAddr: quicMultiaddr(address.family, remote?.address ?? address.host, remote?.port ?? address.port, remotePeer.toString()),
      direction: 'outbound',
      log: this.#components.logger.forComponent('libp2p:msquic:connection:outbound')
    })
    connections.set(maConn, connection)
    connections.set(maConn.remoteAddr, connection)
    try {
      const upgraded = await options.upgrader.upgradeOutbound(maConn, {
        skipEncryption: true,
        skipProtection: true,
        remotePeer,
        muxerFactory: this.muxerFactory(connection, 'outbound'),
        signal: options.signal
      })
      connections.set(upgraded, connection)
      this.reservations?.upgraded(connection.id, remotePeer.toString())
      return upgraded
    } catch (error) {
      maConn.abort(error as Error)
      throw error
    }
  }

  // The tickets this connection receives (the latest is kept) are the peer's, at this address.
  #keepTickets (connection: QuicConnection, address: QuicAddress, peer: PeerId): void {
    const tickets = this.sessionTickets
    if (tickets === undefined) return
    if (connection.sessionTicket !== undefined) tickets.set(address, peer, connection.sessionTicket)
    connection.on('sessionTicket', (ticket: Buffer) => { tickets.set(address, peer, ticket) })
  }

  createListener (options: CreateListenerOptions): Listener {
    const c = this.#components
    const admission = this.#options.admission === false ? undefined : new InboundAdmission(this.#options.admission, c.connectionManager, c.connectionGater, this.reservations)
    return new MsQuicLibp2pListener(this, options.upgrader, c.logger.forComponent('libp2p:msquic:listener'), c.logger, this.#options, admission)
  }
}

type ListenerState =
  | { status: 'ready' }
  | { status: 'listening', listener: QuicListener, address: QuicAddress, listenAddr: Multiaddr }
  | { status: 'closed' }

export class MsQuicLibp2pListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  readonly #transport: MsQuicTransport
  readonly #upgrader: Upgrader
  readonly #log: Logger
  readonly #logger: ComponentLogger
  readonly #options: MsQuicTransportOptions
  readonly #shutdown = new AbortController()
  readonly #connections = new Set<MsQuicMultiaddrConnection>()
  // Peer ids verified during handshakes, by the certificate object verifyPeer was given.
  readonly #verified = new WeakMap<Buffer, PeerId>()
  #state: ListenerState = { status: 'ready' }
  /** Admission before the handshake (undefined with `admission: false`). */
  readonly admission: InboundAdmission | undefined

  constructor (transport: MsQuicTransport, upgrader: Upgrader, log: Logger, logger: ComponentLogger, options: MsQuicTransportOptions, admission?: InboundAdmission) {
    super()
    this.#transport = transport
    this.#upgrader = upgrader
    this.#log = log
    this.#logger = logger
    this.#options = options
    this.admission = admission
  }

  async listen (ma: Multiaddr): Promise<void> {
    if (this.#state.status !== 'ready') throw new Error(`The listener is ${this.#state.status}`)
    const address = parseQuicAddress(ma)
    const { cert, key } = await this.#transport.credentials()
    const listener = await listen({
      ...this.#transport.settings(),
      host: address.host,
      port: address.port,
      alpn: LIBP2P_ALPN,
      cert,
      key,
      backlog: this.#options.backlog,
      sessionTickets: this.#options.sessionTickets ?? true,
      ...(this.admission === undefined
        ? {}
        : {
            // js-libp2p's pending inbound connections are, over QUIC, the handshakes; Retry from half.
            maxHandshakes: this.admission.maxPending,
            retryAbove: Math.max(1, this.admission.maxPending >> 1),
            admit: this.admission.admit
          }),
      verifyPeer: async ({ der }) => {
        if (der === undefined) return false
        try {
          this.#verified.set(der, await verifyLibp2pCertificate(der))
          return true
        } catch (error) {
          this.#log('refused a peer certificate: %s', (error as Error).message)
          return false
        }
      }
    })
    const port = listener.address().port
    this.#state = { status: 'listening', listener, address: { ...address, port }, listenAddr: quicMultiaddr(address.family, address.host, port) }
    void this.#accept(listener)
    this.safeDispatchEvent('listening')
  }

  async #accept (listener: QuicListener): Promise<void> {
    try {
      for await (const connection of listener) void this.#upgrade(connection)
    } catch (error) {
      if (this.#state.status === 'listening') this.safeDispatchEvent('error', { detail: error as Error })
    }
  }

  async #upgrade (connection: QuicConnection): Promise<void> {
    const der = connection.peerCertificate
    // A resumed connection's certificate came out of the ticket this listener issued (verified
    // then; verifyLibp2pCertificate remembers it).
    const remotePeer = der === undefined ? undefined : this.#verified.get(der) ?? (connection.sessionResumed ? await verifyLibp2pCertificate(der).catch(() => undefined) : undefined)
    const remote = connection.remoteAddress
    this.admission?.handshakeDone(connection)
    if (remotePeer === undefined || remote === undefined) {
      void connection.close({ code: 0 }).catch(() => {})
      return
    }
    const maConn = new MsQuicMultiaddrConnection({
      connection,
      remoteAddr: quicMultiaddr(remote.family, remote.address, remote.port, remotePeer.toString()),
      direction: 'inbound',
      log: this.#logger.forComponent('libp2p:msquic:connection:inbound')
    })
    connections.set(maConn, connection)
    connections.set(maConn.remoteAddr, connection)
    this.#connections.add(maConn)
    maConn.addEventListener('close', () => { this.#connections.delete(maConn) }, { once: true })
    try {
      await this.#upgrader.upgradeInbound(maConn, {
        skipEncryption: true,
        skipProtection: true,
        remotePeer,
        muxerFactory: this.#transport.muxerFactory(connection, 'inbound'),
        signal: this.#shutdown.signal
      })
      this.#transport.reservations?.upgraded(connection.id, remotePeer.toString())
    } catch (error) {
      this.#log('inbound upgrade failed: %s', (error as Error).message)
      maConn.abort(error as Error)
    }
  }

  /** The QUIC listener under this libp2p listener, while listening (its stats count admission refusals). */
  get quic (): QuicListener | undefined {
    return this.#state.status === 'listening' ? this.#state.listener : undefined
  }

  getAddrs (): Multiaddr[] {
    if (this.#state.status !== 'listening') return []
    const { address, listenAddr } = this.#state
    if (address.host === '0.0.0.0') return expandWildcard(4, address.port)
    if (address.host === '::') return expandWildcard(6, address.port)
    return [listenAddr]
  }

  updateAnnounceAddrs (_addrs: Multiaddr[]): void {
    // QUIC announces what it listens on; js-libp2p's address manager applies announce addresses.
  }

  async close (): Promise<void> {
    if (this.#state.status !== 'listening') {
      this.#state = { status: 'closed' }
      return
    }
    const { listener } = this.#state
    this.#state = { status: 'closed' }
    this.#shutdown.abort()
    for (const maConn of this.#connections) maConn.abort(new QuicError(QuicErrorCode.CLOSED, 'The listener closed'))
    this.#connections.clear()
    await listener.close()
    this.safeDispatchEvent('close')
  }
}
