/**
 * Negotiation test helpers: QUIC stream pairs on loopback, a QuicStream seen as a libp2p v3 Stream
 * (so @libp2p/multistream-select runs on real QUIC streams), a scripted peer, listener snapshots.
 */
import type { Duplex } from 'node:stream'
import { logger } from '@libp2p/logger'
import { AbstractStream } from '@libp2p/utils'
import { afterAll, beforeAll } from 'vitest'
import type { QuicConnection, QuicListener, QuicStream } from '../../src/index.js'
import { MessageDecoder } from '../../src/negotiation/index.js'
import { pair } from '../helpers.js'

/** One QUIC connection on loopback, and a way to get stream pairs from it. */
export async function quicPair (): Promise<{ client: QuicConnection, server: QuicConnection, close: () => Promise<void> }> {
  const { listener, client, server } = await pair()
  return { client, server, close: () => closeAll(client, listener) }
}

/** One QUIC connection pair for a test file: opened before its tests, closed after them. */
export function useQuicPair (): { readonly client: QuicConnection, readonly server: QuicConnection } {
  const peers = {} as { client: QuicConnection, server: QuicConnection, close: () => Promise<void> }
  beforeAll(async () => { Object.assign(peers, await quicPair()) })
  afterAll(async () => { await peers.close() })
  return peers
}

async function closeAll (client: QuicConnection, listener: QuicListener): Promise<void> {
  await client.close()
  await listener.close()
}

/**
 * A QuicStream as a libp2p v3 Stream, in the shape js-libp2p-quic gives its streams: libp2p's
 * AbstractStream does the buffering and events, the QuicStream carries the bytes.
 */
export class Libp2pQuicStream extends AbstractStream {
  readonly quic: QuicStream

  constructor (quic: QuicStream, direction: 'inbound' | 'outbound') {
    super({ id: String(quic.id), direction, log: logger(`test:libp2p-quic:${direction}`) })
    this.quic = quic
    quic.on('data', (chunk: Buffer) => { this.onData(chunk) })
    quic.on('end', () => { this.onRemoteCloseWrite() })
    quic.on('drain', () => { this.safeDispatchEvent('drain') })
    quic.on('error', () => { this.onRemoteReset() })
    quic.on('close', () => { this.onTransportClosed() })
  }

  sendData (data: Parameters<AbstractStream['sendData']>[0]): ReturnType<AbstractStream['sendData']> {
    let canSendMore = true
    for (const chunk of data) canSendMore = this.quic.write(chunk)
    return { sentBytes: data.byteLength, canSendMore }
  }

  sendReset (): void {
    this.quic.reset(0)
    this.quic.destroy()
  }

  sendPause (): void { this.quic.pause() }
  sendResume (): void { this.quic.resume() }
  async sendCloseWrite (): Promise<void> { this.quic.end() }
  async sendCloseRead (): Promise<void> { this.quic.stopSending(0) }
}

/** Collects `bytes` bytes of a libp2p stream's messages (after negotiation). */
export function readLibp2p (stream: Libp2pQuicStream, bytes: number): Promise<Buffer> {
  return new Promise(resolve => {
    const chunks: Buffer[] = []
    let length = 0
    const onMessage = (event: { data: { subarray: () => Uint8Array } }): void => {
      const chunk = Buffer.from(event.data.subarray())
      chunks.push(chunk)
      length += chunk.length
      if (length < bytes) return
      stream.removeEventListener('message', onMessage)
      resolve(Buffer.concat(chunks))
    }
    stream.addEventListener('message', onMessage)
  })
}

/** Reads exactly `bytes` bytes from a Node stream (and leaves the rest there). */
export function readExactly (stream: Duplex, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const chunk = stream.read(bytes) as Buffer | null
      if (chunk === null) return
      stream.off('readable', attempt)
      stream.off('error', reject)
      resolve(chunk)
    }
    stream.on('readable', attempt)
    stream.on('error', reject)
  })
}

/**
 * A peer that follows a script: each message it receives goes to `answer`, whose bytes (if any)
 * it writes back. Returns what it received, in order.
 */
export function scriptedPeer (stream: Duplex, answer: (message: string, index: number) => Uint8Array | undefined): string[] {
  const received: string[] = []
  const decoder = new MessageDecoder()
  stream.on('error', () => {})
  stream.on('data', (chunk: Buffer) => {
    decoder.push(chunk)
    for (let message = decoder.next(); message !== undefined; message = decoder.next()) {
      received.push(message)
      const bytes = answer(message, received.length - 1)
      if (bytes !== undefined) stream.write(bytes)
    }
  })
  return received
}

const EVENTS = ['data', 'readable', 'end', 'error', 'close', 'drain', 'finish', 'prefinish'] as const

/** How many listeners a stream has for each event, to compare before and after a negotiation. */
export function listeners (stream: Duplex): Record<string, number> {
  return Object.fromEntries(EVENTS.map(event => [event, stream.listenerCount(event)]))
}

/** What listeners() says of a stream nobody listens to any more (after its 'close'). */
export const NO_LISTENERS = Object.fromEntries(EVENTS.map(event => [event, 0]))

/** Resolves after the stream's 'close' event; call it before the stream can close. */
export function closeEvent (stream: Duplex): Promise<void> {
  return new Promise(resolve => stream.once('close', () => resolve()))
}

/** The error a stream was destroyed with by its peer's RESET_STREAM or STOP_SENDING. */
export function peerReset (stream: Duplex): Promise<Error & { code?: string, errorCode?: number | bigint }> {
  return new Promise(resolve => stream.once('error', resolve))
}

/** Bytes as hex, for exact comparisons with readable failures. */
export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
