import { once } from 'node:events'
import type { Readable } from 'node:stream'
import { createSelfSignedCertificate, listen, connect, type QuicListener, type QuicConnection, type ListenOptions, type ConnectOptions } from '../src/index.js'

let credentials: Promise<{ cert: string, key: string }> | undefined

/** One self-signed certificate for localhost / 127.0.0.1 / ::1 per test file. */
export function testCertificate (): Promise<{ cert: string, key: string }> {
  credentials ??= createSelfSignedCertificate()
  return credentials
}

/** Reads a stream to its end without destroying it (so it can still be written). */
export async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** A listener on 127.0.0.1 and a client connected to it, with ALPN 'test'. */
export async function pair (serverOptions: Partial<ListenOptions> = {}, clientOptions: Partial<ConnectOptions> = {}): Promise<{ listener: QuicListener, client: QuicConnection, server: QuicConnection }> {
  const { cert, key } = await testCertificate()
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, ...serverOptions })
  const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert, ...clientOptions })
  const server = await listener.accept()
  return { listener, client, server }
}

/** Waits until `predicate` holds, polling; fails after `timeout` ms with `what`. */
export async function until (predicate: () => boolean, what: string, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

export { once }
