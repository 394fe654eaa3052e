/**
 * The handler of PROVIDERS_PROTOCOL (nearby.ts asks it): a peer asks for the providers of a name
 * (its UTF-8 bytes, at most 255) and gets those this node's provider store holds, encoded by
 * encodeProviders(); empty when it holds none. One stream per request. JS thread only.
 */
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { encodeProviders, localProviders } from '../nearby.js'
import { PROVIDERS_PROTOCOL } from '../options.js'
import { nameToCid } from '../record.js'
import { readAll } from '../wire.js'

/** Answers one PROVIDERS_PROTOCOL request on `stream` from `dht`'s provider store. */
export async function answerProviders (stream: Stream, dht: unknown, libp2p: Libp2p): Promise<void> {
  try {
    const name = Buffer.from(await readAll(stream, 255)).toString('utf8')
    // This node as a provider has no peer-store entry: its own addresses stand in (as in kad-dht's handler).
    const self = (peer: PeerId): Multiaddr[] | undefined => peer.equals(libp2p.peerId) ? libp2p.getMultiaddrs() : undefined
    const providers = name.length === 0 ? [] : await localProviders(dht, libp2p.peerStore, nameToCid(name), undefined, self) ?? []
    const answer = encodeProviders(providers)
    if (!stream.send(answer)) await stream.onDrain()
    await stream.close()
  } catch (error) {
    stream.abort(error as Error)
  }
}

export class ProvidersHandler {
  readonly #libp2p: Libp2p

  constructor (components: { libp2p: Libp2p, dht: unknown }) {
    this.#libp2p = components.libp2p
    void this.#libp2p.handle(PROVIDERS_PROTOCOL, async (stream) => { await answerProviders(stream, components.dht, components.libp2p) }, { maxInboundStreams: 256 }).catch(() => {})
  }

  /** Stops answering. */
  async stop (): Promise<void> {
    await this.#libp2p.unhandle(PROVIDERS_PROTOCOL).catch(() => {})
  }
}
