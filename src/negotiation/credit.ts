/**
 * Exact stream credit for one connection the router serves.
 *
 * MsQuic's own rule grants the peer a new stream whenever one closes below the limit, and a lower
 * limit never takes back credit already granted. So the router pins the limit at 0 (MsQuic then
 * grants nothing by itself) and grants explicitly: raising the limit by n grants n, and setting it
 * back to 0 right after takes nothing away. (A stream closing between the two calls can add one
 * more; the router then sees a stream arrive on credit it did not count, and counts nothing for
 * it.) Counting grants and arrivals, the router knows what the peer may still open. JS thread only.
 */
import type { QuicConnection } from '../quic/connection.js'
import { kGrantStreams } from '../quic/symbols.js'

export class ConnectionCredit {
  readonly #connection: QuicConnection
  /** Streams the peer may still open on its first credit (the transport parameters). */
  initial: number
  /** Streams the peer may still open on credit the router granted. */
  granted = 0
  /** The peer said it is blocked (STREAMS_BLOCKED), or used its last credit, and has not been granted anything since. */
  hungry = false
  /** When a stream last arrived or credit was granted (performance.now()). */
  active = 0

  constructor (connection: QuicConnection) {
    this.#connection = connection
    this.initial = connection.streamLimits?.bidirectional ?? 0
    this.#grant(0)
    // One-way streams cannot be negotiated: none are granted beyond the first credit.
    try {
      connection.setStreamLimits({ unidirectional: 0 })
    } catch {}
  }

  /** Everything the peer may still open. */
  get outstanding (): number {
    return this.initial + this.granted
  }

  /** A stream arrived; returns true when it used credit the router granted (not the first credit). */
  used (): boolean {
    this.active = performance.now()
    if (this.initial > 0) {
      this.initial--
      return false
    }
    if (this.granted > 0) {
      this.granted--
      return true
    }
    return false  // credit MsQuic granted before the router took over
  }

  /** Grants `count` (at most 65,535) more streams; false if the connection is closing. */
  grant (count: number): boolean {
    count = Math.min(count, 65535)
    if (!this.#grant(count)) return false
    this.granted += count
    this.hungry = false
    this.active = performance.now()
    return true
  }

  #grant (count: number): boolean {
    try {
      this.#connection[kGrantStreams](count)
      return true
    } catch {
      return false  // the connection is closing; its accept loop ends soon
    }
  }
}
