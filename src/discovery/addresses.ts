/**
 * Which of its own addresses a registry advertises (in records, provider entries and identify).
 * A node listening on 0.0.0.0 has its loopback address among its interface addresses; a peer on
 * another host that dials 127.0.0.1 reaches a node of its own, or nothing. So loopback addresses are
 * left out whenever the node has another, and `noAnnounce` ones always. JS thread only.
 */
import type { PeerId } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

/** Whether `ma` is on the loopback interface (127.0.0.0/8 or ::1). */
export function isLoopback (ma: Multiaddr): boolean {
  const [first] = ma.getComponents()
  if (first?.name === 'ip4') return first.value?.startsWith('127.') === true
  if (first?.name === 'ip6') return first.value === '::1'
  return false
}

/** `address` without its trailing /p2p/ part. */
function bare (address: string): string {
  const at = address.indexOf('/p2p/')
  return at === -1 ? address : address.slice(0, at)
}

/**
 * Whether `address` is one of `prefixes` or starts with one at a component boundary
 * (`/ip4/10.0.0.5` leaves out every address on that IP).
 */
function matches (address: string, prefixes: readonly string[]): boolean {
  const own = bare(address)
  return prefixes.some(prefix => {
    const p = bare(prefix).replace(/\/$/, '')
    return own === p || own.startsWith(`${p}/`)
  })
}

/**
 * The addresses of `addresses` to advertise: those not in `noAnnounce`, without loopback ones when
 * another is left (a node on loopback only keeps them: it has nothing else to offer).
 */
export function publishable (addresses: readonly Multiaddr[], noAnnounce: readonly string[] = []): Multiaddr[] {
  const kept = noAnnounce.length === 0 ? [...addresses] : addresses.filter(ma => !matches(ma.toString(), noAnnounce))
  return kept.some(ma => !isLoopback(ma)) ? kept.filter(ma => !isLoopback(ma)) : kept
}

/**
 * What to dial to reach `peer` at `addresses` (a record's, or a provider entry's): each address
 * ending in /p2p/<peer>, or the peer id alone when there are none (libp2p then looks it up).
 */
export function dialTarget (peer: PeerId, addresses: ReadonlyArray<string | Multiaddr>): PeerId | Multiaddr[] {
  if (addresses.length === 0) return peer
  return addresses.map(address => {
    const ma = typeof address === 'string' ? multiaddr(address) : address
    return address.toString().includes('/p2p/') ? ma : ma.encapsulate(`/p2p/${peer.toString()}`)
  })
}
