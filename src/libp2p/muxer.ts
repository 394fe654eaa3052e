/**
 * The libp2p side of one QUIC connection: a MultiaddrConnection (bytes only move on streams) and a
 * StreamMuxer whose streams are MsQuicStreams. QUIC multiplexes natively, so the upgrader skips
 * encryption and muxer negotiation and takes these as they are.
 */
import { TypedEventEmitter, type AbortOptions, type ComponentLogger, type CreateStreamOptions, type Logger, type MessageStream, type StreamMuxer, type StreamMuxerEvents, type StreamMuxerFactory, type StreamMuxerStatus } from '@libp2p/interface'
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { QuicConnection } from '../quic/connection.js'
import { ConnectionCloseCode } from './errors.js'
import type { PeerNegotiations } from './negotiation.js'
import { MsQuicStream, resetCodeOf } from './stream.js'

/** The muxer's name in `connection.multiplexer`. */
export const MUXER_PROTOCOL = 'quic'

export interface MsQuicConnectionInit {
  connection: QuicConnection
  remoteAddr: Multiaddr
  direction: 'inbound' | 'outbound'
  log: Logger
}

/** The MultiaddrConnection: closing it closes the QUIC connection, draining its streams first. */
export class MsQuicMultiaddrConnection extends AbstractMultiaddrConnection {
  readonly connection: QuicConnection

  constructor (init: MsQuicConnectionInit) {
    super({ remoteAddr: init.remoteAddr, direction: init.direction, log: init.log })
    this.connection = init.connection
    void init.connection.closed.then(info => {
      if (this.status !== 'open' && this.status !== 'closing') return
      this.onTransportClosed(info.by === 'local' ? undefined : info.error)
    })
  }

  sendData (): { sentBytes: number, canSendMore: boolean } {
    throw new Error('A QUIC connection carries bytes on its streams only')
  }

  /** Abort: CONNECTION_CLOSE at once, with the error's code. */
  sendReset (err: Error): void {
    const code = resetCodeOf(err)
    void this.connection.close({ code: code === 0 ? ConnectionCloseCode.NO_ERROR : code }).catch(() => {})
  }

  /**
   * Graceful close: no new streams, the open ones finish (bounded by `options.signal`, which
   * js-libp2p sets to its connection close timeout), then CONNECTION_CLOSE with code 0.
   */
  async sendClose (options?: AbortOptions): Promise<void> {
    const signal = options?.signal
    const now = (): void => { void this.connection.close({ code: ConnectionCloseCode.NO_ERROR }).catch(() => {}) }
    if (signal?.aborted === true) now()
    signal?.addEventListener('abort', now, { once: true })
    try {
      await this.connection.close({ graceful: true, code: ConnectionCloseCode.NO_ERROR })
    } catch {
      // closed already
    } finally {
      signal?.removeEventListener('abort', now)
    }
  }

  sendPause (): void {}
  sendResume (): void {}
}

export interface MsQuicMuxerInit {
  connection: QuicConnection
  logger: ComponentLogger
  /** Logger name prefix of this connection's streams. */
  name: string
  /** Read buffer limit of the streams (what js-libp2p's StreamOptions would set). */
  maxReadBufferLength?: number
  /** Bounded negotiation: inbound streams reach js-libp2p negotiated, outbound ones with one protocol are negotiated here. */
  negotiation?: { peer: PeerNegotiations, protocols?: () => string[] }
}

export class MsQuicMuxerFactory implements StreamMuxerFactory<MsQuicMuxer> {
  readonly protocol = MUXER_PROTOCOL
  readonly #init: MsQuicMuxerInit

  constructor (init: MsQuicMuxerInit) {
    this.#init = init
  }

  createStreamMuxer (maConn: MessageStream): MsQuicMuxer {
    return new MsQuicMuxer(this.#init, maConn)
  }
}

export class MsQuicMuxer extends TypedEventEmitter<StreamMuxerEvents<MsQuicStream>> implements StreamMuxer<MsQuicStream> {
  readonly protocol = MUXER_PROTOCOL
  streams: MsQuicStream[] = []
  status: StreamMuxerStatus = 'open'
  readonly #init: MsQuicMuxerInit
  readonly #log: Logger
  // One logger for the connection's streams: a logger per stream costs more than a 64 B echo.
  readonly #streamLog: Logger
  readonly #accepting = new AbortController()
  #started = false

  constructor (init: MsQuicMuxerInit, maConn: MessageStream) {
    super()
    this.#init = init
    this.#log = init.logger.forComponent(`${init.name}:muxer`)
    this.#streamLog = init.logger.forComponent(`${init.name}:stream`)
    maConn.addEventListener('close', (evt) => {
      this.abort((evt as unknown as { error?: Error }).error ?? new Error('The connection closed'))
    }, { once: true })
  }

  // Peer streams wait natively (and in the connection's queue) until someone listens for them:
  // js-libp2p adds its listener right after making the muxer, so nothing is dispatched unheard.
  override addEventListener (type: string, listener: any, options?: boolean | AddEventListenerOptions): void {
    super.addEventListener(type as keyof StreamMuxerEvents<MsQuicStream>, listener, options)
    if (type === 'stream' && !this.#started) {
      this.#started = true
      void this.#accept()
    }
  }

  async #accept (): Promise<void> {
    const { connection } = this.#init
    const signal = this.#accepting.signal
    while (this.status === 'open') {
      let stream: MsQuicStream
      try {
        stream = await connection.acceptStreamWith(core => this.#wrap(core, 'inbound'), { signal, unidirectional: false })
      } catch {
        return
      }
      if (this.status !== 'open') {
        stream.abort(new Error('The muxer is closed'))
        return
      }
      this.#track(stream)
      const negotiation = this.#init.negotiation
      if (negotiation?.protocols !== undefined) void this.#negotiated(stream, negotiation.peer, negotiation.protocols)
      else this.safeDispatchEvent('stream', { detail: stream })
    }
  }

  // Handed to js-libp2p only once negotiated (it then skips multistream-select).
  async #negotiated (stream: MsQuicStream, peer: PeerNegotiations, protocols: () => string[]): Promise<void> {
    const protocol = await peer.inboundStream(stream, protocols)
    if (protocol === null || this.status !== 'open' || stream.status !== 'open') return
    stream.protocol = protocol
    this.safeDispatchEvent('stream', { detail: stream })
  }

  #wrap (core: ConstructorParameters<typeof MsQuicStream>[0]['core'], direction: 'inbound' | 'outbound', protocol?: string): MsQuicStream {
    return new MsQuicStream({
      core,
      direction,
      protocol,
      log: this.#streamLog,
      maxReadBufferLength: this.#init.maxReadBufferLength
    })
  }

  #track (stream: MsQuicStream): void {
    // A peer stream can end while it waits to be accepted: it is never listed (no 'close' would come).
    if (stream.status !== 'open') return
    this.streams.push(stream)
    stream.addEventListener('close', () => {
      const index = this.streams.indexOf(stream)
      if (index !== -1) this.streams.splice(index, 1)
    }, { once: true })
  }

  async createStream (options: CreateStreamOptions = {}): Promise<MsQuicStream> {
    if (this.status !== 'open') throw new Error(`The muxer is ${this.status}`)
    const stream = await this.#init.connection.openStreamWith(core => this.#wrap(core, 'outbound'), { signal: options.signal })
    stream.refreshId()
    this.#track(stream)
    const negotiation = this.#init.negotiation
    if (negotiation !== undefined && options.protocol !== undefined && options.protocol !== '') {
      stream.protocol = await negotiation.peer.outboundStream(stream, options.protocol, options.signal)
    }
    return stream
  }

  /** Ends the write side of every stream (after what is queued); the connection's close drains them. */
  async close (options?: AbortOptions): Promise<void> {
    if (this.status !== 'open') return
    this.status = 'closing'
    this.#accepting.abort()
    await Promise.all(this.streams.map(async stream => { await stream.close(options).catch(() => {}) }))
    this.status = 'closed'
  }

  abort (err: Error): void {
    if (this.status === 'closed') return
    this.status = 'closed'
    this.#accepting.abort()
    for (const stream of [...this.streams]) stream.abort(err)
    this.streams = []
    this.#log('aborted: %s', err.message)
  }
}
