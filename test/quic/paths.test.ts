// Path changes under a connection: a NAT rebinding the client did not choose, and an attacker on the
// path racing copies of the client's packets from another address (RFC 9000 §9.3).
import { describe, expect, it } from 'vitest'
import { connect, listen, type QuicConnection } from '../../src/index.js'
import { pathRelay } from '../path-relay.js'
import { readAll, testCertificate } from '../helpers.js'

/** One echo round trip on a new stream, with a deadline. */
async function echo (client: QuicConnection, payload: Buffer, ms = 3000): Promise<Buffer> {
  const stream = await client.openStream()
  stream.end(payload)
  const answer = readAll(stream)
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no echo within ${ms} ms`)), ms).unref())
  return await Promise.race([answer, timeout])
}

async function echoServer (): Promise<{ port: number, connections: QuicConnection[], close: () => Promise<void> }> {
  const { cert, key } = await testCertificate()
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'paths', cert, key })
  const connections: QuicConnection[] = []
  void (async () => {
    for await (const connection of listener) {
      connections.push(connection)
      void (async () => {
        for (;;) {
          const stream = await connection.acceptStream().catch(() => null)
          if (stream === null) return
          void readAll(stream).then(data => stream.end(data), () => {})
        }
      })()
    }
  })()
  return { port: listener.address().port, connections, close: async () => { await listener.close() } }
}

describe('path changes', () => {
  it('should keep a connection working across a NAT rebinding', async () => {
    const { cert } = await testCertificate()
    const server = await echoServer()
    const relay = await pathRelay(server.port)
    const client = await connect({ host: '127.0.0.1', port: relay.port, alpn: 'paths', ca: cert, idleTimeout: 10_000 })
    const payload = Buffer.alloc(64 * 1024, 1)
    expect((await echo(client, payload)).equals(payload)).toBe(true)
    const before = server.connections[0].remoteAddress?.port
    const newPort = await relay.rebind()
    for (let i = 0; i < 20; i++) expect((await echo(client, payload)).equals(payload)).toBe(true)
    // The server moved to the new address.
    expect(newPort).not.toBe(before)
    expect(server.connections[0].remoteAddress?.port).toBe(newPort)
    await client.close()
    relay.close()
    await server.close()
  }, 60_000)

  it('should keep a connection working while copies of its packets race in from another address', async () => {
    const { cert } = await testCertificate()
    const server = await echoServer()
    const relay = await pathRelay(server.port, 7)
    const client = await connect({ host: '127.0.0.1', port: relay.port, alpn: 'paths', ca: cert, idleTimeout: 10_000 })
    const payload = Buffer.alloc(64 * 1024, 2)
    expect((await echo(client, payload)).equals(payload)).toBe(true)
    const realPort = server.connections[0].remoteAddress?.port
    await relay.forward(0.05, '127.0.0.9')
    let done = 0
    const started = performance.now()
    while (performance.now() - started < 4000) {
      expect((await echo(client, payload)).equals(payload)).toBe(true)
      done++
    }
    console.log(`off-path copies: ${relay.stats.copies} of ${relay.stats.toServer} packets copied from 127.0.0.9, ` +
      `${relay.stats.repliesToCopies} server packets went to the copier; ${done} echoes of 64 KiB in 4 s`)
    expect(relay.stats.copies).toBeGreaterThan(10)
    // The connection stays on (or returns to) the validated path.
    expect(server.connections[0].remoteAddress?.port).toBe(realPort)
    await client.close()
    relay.close()
    await server.close()
  }, 60_000)
})
