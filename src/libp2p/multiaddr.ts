/** `/ip4|ip6/<addr>/udp/<port>/quic-v1[/p2p/<id>]` multiaddrs: filters, parsing, expansion. */
import { networkInterfaces } from 'node:os'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { QUIC_V1 } from '@multiformats/multiaddr-matcher'
import { Libp2pQuicError, Libp2pQuicErrorCode } from './errors.js'

/** Keeps the multiaddrs this transport dials and listens on: QUIC v1 over IPv4 or IPv6, nothing after but /p2p. */
export function quicV1Filter (multiaddrs: Multiaddr[]): Multiaddr[] {
  return multiaddrs.filter(isQuicV1)
}

function isQuicV1 (ma: Multiaddr): boolean {
  const first = ma.getComponents()[0]?.name
  return (first === 'ip4' || first === 'ip6') && QUIC_V1.exactMatch(ma)
}

export interface QuicAddress {
  family: 4 | 6
  host: string
  port: number
  /** The `/p2p/<id>` part, if any. */
  peerId?: string
}

export function parseQuicAddress (ma: Multiaddr): QuicAddress {
  if (!isQuicV1(ma)) throw new Libp2pQuicError(Libp2pQuicErrorCode.INVALID_MULTIADDR, `Not a QUIC v1 multiaddr: ${ma.toString()}`)
  const components = ma.getComponents()
  const ip = components.find(c => c.name === 'ip4' || c.name === 'ip6')
  const udp = components.find(c => c.name === 'udp')
  const p2p = components.find(c => c.name === 'p2p')
  if (ip?.value === undefined || udp?.value === undefined) throw new Libp2pQuicError(Libp2pQuicErrorCode.INVALID_MULTIADDR, `Not a QUIC v1 multiaddr: ${ma.toString()}`)
  return { family: ip.name === 'ip4' ? 4 : 6, host: ip.value, port: Number(udp.value), peerId: p2p?.value }
}

export function quicMultiaddr (family: 4 | 6 | 'IPv4' | 'IPv6', host: string, port: number, peerId?: string): Multiaddr {
  const proto = family === 4 || family === 'IPv4' ? 'ip4' : 'ip6'
  return multiaddr(`/${proto}/${host}/udp/${port}/quic-v1${peerId === undefined ? '' : `/p2p/${peerId}`}`)
}

/** A wildcard address, expanded from the interfaces present now (called each time, not cached). */
export function expandWildcard (family: 4 | 6, port: number): Multiaddr[] {
  const wanted = family === 4 ? 'IPv4' : 'IPv6'
  const out: Multiaddr[] = []
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.family !== wanted) continue
      // Link-local IPv6 addresses need a zone to be dialable; they are left out.
      if (wanted === 'IPv6' && entry.address.toLowerCase().startsWith('fe80')) continue
      out.push(quicMultiaddr(family, entry.address, port))
    }
  }
  return out
}
