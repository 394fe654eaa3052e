/**
 * Inbound admission before the QUIC handshake: js-libp2p's rules for incoming connections (deny and
 * allow lists, at most `maxIncomingPendingConnections` at once, at most `inboundConnectionThreshold`
 * per host per second, the connection gater's `denyInboundConnection`) applied when MsQuic reports
 * the new connection, so a refused peer costs no handshake. js-libp2p applies them again after the
 * upgrade; that second pass finds nothing left to refuse. JS thread.
 */
import { BlockList, isIPv6 } from 'node:net'
import type { ConnectionGater, MultiaddrConnection } from '@libp2p/interface'
import type { AdmitConnection, IncomingConnection } from '../quic/listener.js'
import type { QuicConnection } from '../quic/connection.js'
import type { Reservation, TransientConnectionManager } from '../limits/transient.js'
import { invalidArgValue, optionalInteger } from '../args.js'
import { quicMultiaddr } from './multiaddr.js'
import type { ConnectionReservations } from './reservations.js'

export interface AdmissionOptions {
  /**
   * Handshakes at once; beyond it new connections are refused natively. Default: the node's
   * `connectionManager.maxIncomingPendingConnections` (js-libp2p's default is 10).
   */
  maxIncomingPendingConnections?: number
  /**
   * New connections per remote host per second. Default: the node's
   * `connectionManager.inboundConnectionThreshold` (js-libp2p's default is 5).
   */
  inboundConnectionThreshold?: number
  /** IPs or CIDR ranges ('10.0.0.0/8', '/ip4/10.0.0.0/ipcidr/8') always refused. Default: the node's `deny` list. */
  deny?: string[]
  /** IPs or CIDR ranges never refused by the limits above. Default: the node's `allow` list. */
  allow?: string[]
  /**
   * Transient connections (see ConnectionReservations): each connection of the transport holds one
   * reservation, keyed by its QuicConnection's id, until it closes: an inbound one from its
   * admission before the handshake (refused when the manager refuses; marked handshaking until the
   * handshake ends), an outbound one from the end of its dial's handshake (the dial fails with
   * ERR_LIBP2P_TRANSIENT_LIMIT when refused). Hosts on the `allow` list are not counted.
   */
  transient?: TransientConnectionManager<unknown>
  /**
   * Whether the transport promotes a connection's reservation once its upgrade succeeded (the peer
   * is known). false: the manager's owner promotes it when it wants the peer (the DHT, when the
   * peer enters its routing table), through `transport.reservationOf(connection)`; one it never
   * promotes expires after the manager's `ttl`. Default true.
   */
  promoteOnUpgrade?: boolean
}

/** The parts of js-libp2p's connection manager this reads, when they are there (duck-typed). */
interface ConnectionManagerLike {
  maxIncomingPendingConnections?: unknown
  inboundConnectionRateLimiter?: { points?: unknown }
  deny?: unknown
  allow?: unknown
}
interface IpNetLike { contains: (host: string) => boolean }

const DEFAULT_MAX_PENDING = 10
const DEFAULT_THRESHOLD = 5

/** An address matcher over IPs and CIDR ranges, as plain strings or /ip4|ip6/…/ipcidr/… multiaddrs. */
function matcher (name: string, entries: string[]): (host: string) => boolean {
  const list = new BlockList()
  for (const entry of entries) {
    const parts = entry.startsWith('/') ? entry.split('/') : []
    const [ip, prefix] = parts.length > 0 ? [parts[2], parts[4]] : entry.split('/')
    const family = isIPv6(ip ?? '') ? 'ipv6' : 'ipv4'
    try {
      if (prefix === undefined) list.addAddress(ip, family)
      else list.addSubnet(ip, Number(prefix), family)
    } catch {
      throw invalidArgValue(name, 'must list IP addresses or CIDR ranges', entry)
    }
  }
  return host => list.check(host, isIPv6(host) ? 'ipv6' : 'ipv4')
}

function nodeList (value: unknown): ((host: string) => boolean) | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined
  const nets = value.filter((net): net is IpNetLike => typeof (net as IpNetLike)?.contains === 'function')
  return host => nets.some(net => net.contains(host))
}

/** A per-host token bucket: `perSecond` connections a second, refilled continuously. */
class HostRate {
  readonly #perSecond: number
  readonly #hosts = new Map<string, { tokens: number, at: number }>()
  #swept = performance.now()

  constructor (perSecond: number) { this.#perSecond = perSecond }

  take (host: string): boolean {
    if (this.#perSecond === Infinity) return true
    const now = performance.now()
    if (now - this.#swept > 10_000) this.#sweep(now)
    const bucket = this.#hosts.get(host) ?? { tokens: this.#perSecond, at: now }
    bucket.tokens = Math.min(this.#perSecond, bucket.tokens + (now - bucket.at) * this.#perSecond / 1000)
    bucket.at = now
    this.#hosts.set(host, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  // Full buckets carry no information: forget them, so the map holds only recent hosts.
  #sweep (now: number): void {
    this.#swept = now
    for (const [host, bucket] of this.#hosts) if ((now - bucket.at) * this.#perSecond / 1000 + bucket.tokens >= this.#perSecond) this.#hosts.delete(host)
  }
}

/** The listener's admission, made from the options and the node's connection manager and gater. */
export class InboundAdmission {
  /** Handshakes at once (the listener's `maxHandshakes`). */
  readonly maxPending: number
  readonly #rate: HostRate
  readonly #deny?: (host: string) => boolean
  readonly #allow?: (host: string) => boolean
  readonly #gater?: ConnectionGater
  readonly #reservations?: ConnectionReservations
  // Admitted connections by remote `address:port`, for the deprecated lookups by address.
  readonly #byRemote = new Map<string, number>()
  /** Refusals by reason, since the start. */
  readonly refused = { deny: 0, rate: 0, gater: 0, transient: 0 }

  /** `reservations`: the transport's (made from `options.transient`; none without it). */
  constructor (options: AdmissionOptions = {}, connectionManager?: unknown, gater?: ConnectionGater, reservations?: ConnectionReservations) {
    const node = (typeof connectionManager === 'object' && connectionManager !== null ? connectionManager : {}) as ConnectionManagerLike
    const number = (name: string, value: unknown, fallback: number): number => optionalInteger(`admission.${name}`, value, { min: 1, infinite: true }, fallback)
    this.maxPending = Math.min(2 ** 31, number('maxIncomingPendingConnections', options.maxIncomingPendingConnections,
      typeof node.maxIncomingPendingConnections === 'number' ? node.maxIncomingPendingConnections : DEFAULT_MAX_PENDING))
    const points = node.inboundConnectionRateLimiter?.points
    this.#rate = new HostRate(number('inboundConnectionThreshold', options.inboundConnectionThreshold, typeof points === 'number' ? points : DEFAULT_THRESHOLD))
    this.#deny = options.deny !== undefined ? matcher('admission.deny', options.deny) : nodeList(node.deny)
    this.#allow = options.allow !== undefined ? matcher('admission.allow', options.allow) : nodeList(node.allow)
    this.#gater = gater
    this.#reservations = reservations
  }

  /** The listener's `admit` hook. */
  readonly admit: AdmitConnection = (peer: IncomingConnection) => {
    const host = peer.remoteAddress.address
    if (this.#deny?.(host) === true) return this.#refuse('deny')
    const allowed = this.#allow?.(host) === true
    if (!allowed && !this.#rate.take(host)) return this.#refuse('rate')
    if (this.#gater?.denyInboundConnection !== undefined) return this.#gate(peer, allowed)
    return this.#reserve(peer, allowed)
  }

  /**
   * The reservation an admitted connection holds until it closes, if any. Given the remote
   * `{ address, port }` instead of the connection: deprecated (the reservation is keyed by the
   * connection), kept for one release.
   */
  reservationOf (connection: QuicConnection | { address: string, port: number }): Reservation<unknown> | undefined {
    const id = this.#idOf(connection)
    return id === undefined ? undefined : this.#reservations?.of(id)
  }

  /** The connection ended its handshake: its reservation no longer protects one. (`{ address, port }`: deprecated, as reservationOf().) */
  handshakeDone (connection: QuicConnection | { address: string, port: number }): void {
    const id = this.#idOf(connection)
    if (id !== undefined) this.#reservations?.handshakeDone(id)
  }

  #idOf (connection: QuicConnection | { address: string, port: number }): number | undefined {
    return 'id' in connection ? connection.id : this.#byRemote.get(`${connection.address}:${connection.port}`)
  }

  async #gate (peer: IncomingConnection, allowed: boolean): Promise<boolean> {
    const { address, family, port } = peer.remoteAddress
    // The gater sees what it would see after the upgrade, minus the streams: the remote address.
    const probe = { remoteAddr: quicMultiaddr(family === 'IPv6' ? 6 : 4, address, port) } as unknown as MultiaddrConnection
    if (await (this.#gater as ConnectionGater).denyInboundConnection?.(probe) === true) return this.#refuse('gater')
    return this.#reserve(peer, allowed)
  }

  #reserve (peer: IncomingConnection, allowed: boolean): boolean {
    if (this.#reservations === undefined || allowed) return true
    const { address, port } = peer.remoteAddress
    if (this.#reservations.reserve(peer.id, address, true, peer.closed) === null) return this.#refuse('transient')
    const remote = `${address}:${port}`
    this.#byRemote.set(remote, peer.id)
    void peer.closed.then(() => { if (this.#byRemote.get(remote) === peer.id) this.#byRemote.delete(remote) })
    return true
  }

  #refuse (reason: keyof InboundAdmission['refused']): false {
    this.refused[reason]++
    return false
  }
}
