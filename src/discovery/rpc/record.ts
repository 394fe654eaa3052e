/**
 * The handler of RECORD_PROTOCOL: a peer asks for this node's record of a name (its UTF-8 bytes)
 * and gets the signed record (or withdrawal) this node publishes for it, or nothing. One stream per
 * request. JS thread only.
 */
import type { Libp2p, Stream } from '@libp2p/interface'
import { RECORD_PROTOCOL } from '../options.js'
import { readAll } from '../wire.js'

export interface RecordHandlerInit {
  /** The signed bytes this node publishes for `name` now, if any. */
  record: (name: string) => Uint8Array | undefined
}

export class RecordHandler {
  readonly #libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  readonly #init: RecordHandlerInit

  constructor (components: { libp2p: Pick<Libp2p, 'handle' | 'unhandle'> }, init: RecordHandlerInit) {
    this.#libp2p = components.libp2p
    this.#init = init
    void this.#libp2p.handle(RECORD_PROTOCOL, async (stream) => { await this.#answer(stream) }, { maxInboundStreams: 256 }).catch(() => {})
  }

  async #answer (stream: Stream): Promise<void> {
    try {
      const name = Buffer.from(await readAll(stream, 1024)).toString('utf8')
      const value = this.#init.record(name)
      if (value !== undefined && !stream.send(value)) await stream.onDrain()
      await stream.close()
    } catch (error) {
      stream.abort(error as Error)
    }
  }

  /** Stops answering. */
  async stop (): Promise<void> {
    await this.#libp2p.unhandle(RECORD_PROTOCOL).catch(() => {})
  }
}
