/**
 * StreamCredit: exact control of how many bidirectional streams a connection's peer may open, for
 * a server that bounds its inbound streams (ProtocolRouter does; a libp2p muxer or an RPC server
 * can, without multistream-select).
 *
 * MsQuic's own rule grants the peer a new stream whenever one closes below the limit, and a lower
 * limit never takes back credit already granted. So StreamCredit pins the limit at 0 (MsQuic then
 * grants nothing by itself) and grants explicitly: raising the limit by n grants n, and setting it
 * back to 0 right after takes nothing away. (A stream closing between the two calls can add one
 * more; its owner then sees a stream arrive on credit it did not count, and counts nothing for
 * it.) Counting grants and arrivals, it knows what the peer may still open. JS thread only.
 */
import { EventEmitter } from 'node:events'
import { invalidArgType, invalidArgValue } from '../errors.js'
import type { QuicConnection } from './connection.js'

export interface StreamCreditEvents {
  /** The peer says it is blocked: it wants to open streams and has no credit left (STREAMS_BLOCKED). */
  blocked: []
}

/** The most streams one grant() raises the limit by (a QUIC limit fits in 16 bits here). */
const MAX_GRANT = 65535

export class StreamCredit extends EventEmitter<StreamCreditEvents> {
  readonly #connection: QuicConnection
  #initial: number
  #granted = 0
  #blocked = false
  #lastActive = 0

  /**
   * Takes over `connection`'s bidirectional stream credit: from now on the peer gets only what is
   * granted here, beyond what is left of its first credit. One StreamCredit per connection.
   */
  constructor (connection: QuicConnection) {
    super()
    if (typeof connection?.setStreamLimits !== 'function') throw invalidArgType('connection', 'a QuicConnection', connection)
    this.#connection = connection
    this.#initial = connection.streamLimits?.bidirectional ?? 0
    this.#raise(0)
    connection.on('peerNeedsStreams', ({ bidirectional }) => {
      if (!bidirectional) return
      this.#blocked = true
      this.emit('blocked')
    })
  }

  /** Streams the peer may still open on its first credit (the transport parameters). */
  get initial (): number {
    return this.#initial
  }

  /** Streams the peer may still open on credit granted here. */
  get granted (): number {
    return this.#granted
  }

  /** Everything the peer may still open. */
  get outstanding (): number {
    return this.#initial + this.#granted
  }

  /**
   * Whether the peer is blocked: it said so ('blocked'), or it opened a stream on its last credit
   * (see arrived()), and nothing was granted since.
   */
  get blocked (): boolean {
    return this.#blocked
  }

  /** When a stream last arrived or credit was last granted (performance.now()); 0 before either. */
  get lastActive (): number {
    return this.#lastActive
  }

  /**
   * Counts one bidirectional stream the peer opened (call it for each one taken). Returns true
   * when it used credit granted here (not the first credit). When it used the last credit, the
   * peer most likely wants more: `blocked` turns true (no 'blocked' event: the caller is at hand).
   */
  arrived (): boolean {
    this.#lastActive = performance.now()
    let granted = false
    if (this.#initial > 0) {
      this.#initial--
    } else if (this.#granted > 0) {
      this.#granted--
      granted = true
    } // else: credit MsQuic granted before this took over
    if (this.outstanding === 0) this.#blocked = true
    return granted
  }

  /**
   * Lets the peer open `count` more streams (at most 65,535 at once). Returns false, granting
   * nothing, if the connection is closing.
   */
  grant (count: number): boolean {
    if (!Number.isInteger(count) || count < 0) throw invalidArgValue('count', 'must be a non-negative integer', count, true)
    count = Math.min(count, MAX_GRANT)
    if (!this.#raise(count)) return false
    this.#granted += count
    this.#blocked = false
    this.#lastActive = performance.now()
    return true
  }

  // Raises the limit by `count` and pins it back at 0: MsQuic keeps what the raise granted.
  #raise (count: number): boolean {
    try {
      if (count > 0) this.#connection.setStreamLimits({ bidirectional: count })
      this.#connection.setStreamLimits({ bidirectional: 0 })
      return true
    } catch {
      return false  // the connection is closing
    }
  }
}
