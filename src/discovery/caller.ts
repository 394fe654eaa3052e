/**
 * Caller: the calling half of the registry: a stream to a record's provider (dial), a small RPC on
 * it (request, and requestOn for a connection the service client already holds), and the answering
 * side (handle). Failed connections mark their peer unreachable (unreachable.ts). Arguments are
 * checked by the registry before they get here. JS thread only.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { dialTarget } from './addresses.js'
import type { DiscoveryComponents } from './components.js'
import { DiscoveryError, DiscoveryErrorCode, isDiscoveryError } from './errors.js'
import { DEFAULT_MAX_MESSAGE_BYTES, UNREACHABLE_HOLD, type RequestHandler } from './options.js'
import type { ServiceRecord } from './record.js'
import { exchange, readAll } from './wire.js'

const utf8 = new TextEncoder()

/** Options of one request. */
export interface RequestOptions {
  signal?: AbortSignal
  /** A response, at most (bytes). Default {@link DEFAULT_MAX_MESSAGE_BYTES}. */
  maxResponseBytes?: number
}

export class Caller {
  readonly #components: Pick<DiscoveryComponents, 'libp2p' | 'reachability'>

  constructor (components: Pick<DiscoveryComponents, 'libp2p' | 'reachability'>) {
    this.#components = components
  }

  /** ServiceRegistry.dial(), its arguments checked: a stream for `protocol` to the provider of `record` (its addresses, then its id). */
  async dial (record: ServiceRecord, protocol: string, options: { signal?: AbortSignal }): Promise<Stream> {
    const { libp2p, reachability } = this.#components
    const peer = peerIdFromString(record.peerId)
    const connected = libp2p.getConnections(peer).length > 0
    if (!connected && reachability.isUnreachable(peer)) {
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `dialling ${record.peerId} for ${protocol} skipped: a connection to it failed less than ${UNREACHABLE_HOLD / 1000} s ago`)
    }
    const target = connected ? peer : dialTarget(peer, record.multiaddrs)
    let connection: Connection | undefined
    try {
      connection = await libp2p.dial(target, { signal: options.signal })
      return await connection.newStream(protocol, { signal: options.signal })
    } catch (error) {
      if (options.signal?.aborted !== true) await reachability.failed(peer, connection, error)
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `dialling ${record.peerId} for ${protocol} failed: ${(error as Error).message}`, { cause: error })
    }
  }

  /** ServiceRegistry.request(), its arguments checked: `request` on a new stream, the whole response back. */
  async request (record: ServiceRecord, protocol: string, request: Uint8Array | string, options: RequestOptions): Promise<Uint8Array> {
    const stream = await this.dial(record, protocol, options)
    return await this.#exchange(stream, request, options)
  }

  /**
   * request() on a connection already open (the service client's path). When the stream cannot be
   * opened because the connection is gone, `closed` is called (nothing was sent; the peer is held
   * unreachable unless a new connection to it opens, see Reachability.confirmGone()).
   */
  async requestOn (connection: Connection, protocol: string, request: Uint8Array | string, options: RequestOptions & { closed?: () => void }): Promise<Uint8Array> {
    let stream: Stream
    try {
      stream = await connection.newStream(protocol, { signal: options.signal })
    } catch (error) {
      if (options.signal?.aborted !== true && await this.#components.reachability.failed(connection.remotePeer, connection, error)) {
        options.closed?.()
      }
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `opening a ${protocol} stream failed: ${(error as Error).message}`, { cause: error })
    }
    return await this.#exchange(stream, request, options)
  }

  async #exchange (stream: Stream, request: Uint8Array | string, options: RequestOptions): Promise<Uint8Array> {
    const signal = options.signal
    const onAbort = (): void => stream.abort(signal?.reason ?? new Error('aborted'))
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await exchange(stream, typeof request === 'string' ? utf8.encode(request) : request, options.maxResponseBytes ?? DEFAULT_MAX_MESSAGE_BYTES)
    } catch (error) {
      if (isDiscoveryError(error)) throw error
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `the request failed: ${(error as Error).message}`, { cause: error })
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  /** ServiceRegistry.handle(), its arguments checked: each stream's bytes in, the handler's answer out. */
  async handle (protocol: string, handler: RequestHandler, options: { maxRequestBytes?: number, maxInboundStreams?: number }): Promise<void> {
    await this.#components.libp2p.handle(protocol, async (stream, connection) => {
      try {
        const request = await readAll(stream, options.maxRequestBytes ?? DEFAULT_MAX_MESSAGE_BYTES)
        const response = await handler(request, { peerId: connection.remotePeer, connection })
        const bytes = typeof response === 'string' ? utf8.encode(response) : response
        if (bytes.byteLength > 0 && !stream.send(bytes)) await stream.onDrain()
        await stream.close()
      } catch (error) {
        stream.abort(error as Error)
      }
    }, { maxInboundStreams: options.maxInboundStreams ?? 256 })
  }
}
