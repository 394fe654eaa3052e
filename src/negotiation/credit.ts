/**
 * Exact stream credit for one connection the router serves.
 *
 * MsQuic's own rule grants the peer a new stream whenever one closes below the limit, and a lower
 * limit never takes back credit already granted. So the router pins the limit at 0 (MsQuic then
 * grants nothing by itself) and grants explicitly: raising the limit by n grants exactly n, and
 * setting it back to 0 right after takes nothing away. Counting every grant and every stream that
 * arrives, the router knows what the peer may still open and tops it up to its free slots. JS
 * thread only.
 */
import type { QuicConnection } from '../quic/connection.js'
import { kGrantStreams } from '../quic/symbols.js'

export class ConnectionCredit {
  readonly #connection: QuicConnection
  // Streams the peer may still open: its first credit (the transport parameters), plus grants,
  // minus the streams that arrived.
  #outstanding: number

  constructor (connection: QuicConnection) {
    this.#connection = connection
    this.#outstanding = connection.streamLimits?.bidirectional ?? 0
    this.#grant(0)
    // One-way streams cannot be negotiated: none are granted beyond the first credit.
    try {
      connection.setStreamLimits({ unidirectional: 0 })
    } catch {}
  }

  /** A stream arrived: one credit was used. */
  used (): void {
    this.#outstanding = Math.max(0, this.#outstanding - 1)
  }

  /** Makes sure the peer may open `free` more streams now (never takes credit back). */
  ensure (free: number): void {
    const more = free - this.#outstanding
    if (more > 0 && this.#grant(more)) this.#outstanding += more
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
