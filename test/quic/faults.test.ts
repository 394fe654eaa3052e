import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect } from 'vitest'
import { connect, listen, QuicErrorCode, type QuicStream } from '../../src/index.js'
import { pair, testCertificate, until } from '../helpers.js'

const fixture = fileURLToPath(new URL('./fixtures/streaming-client.mjs', import.meta.url))

describe('faults', () => {
  it('should end everything with a clear code within the idle timeout when the peer process is killed mid-transfer', async () => {
    const { cert, key } = await testCertificate()
    const dir = mkdtempSync(join(tmpdir(), 'node-msquic-kill-'))
    writeFileSync(join(dir, 'ca.pem'), cert)
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, idleTimeout: 1000 })
    const child = spawn(process.execPath, [fixture, String(listener.address().port), join(dir, 'ca.pem')], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      const connection = await listener.accept()
      const stream = await connection.acceptStream()
      let received = 0
      stream.on('data', chunk => { received += chunk.length })
      const failed = once(stream, 'error')
      await until(() => received > 1024 * 1024, 'a megabyte from the peer')
      const pending = expect(connection.acceptStream()).rejects.toMatchObject({ code: QuicErrorCode.IDLE_TIMEOUT })
      const killedAt = Date.now()
      child.kill('SIGKILL')
      const [error] = await failed
      const info = await connection.closed
      await pending
      expect(error).toMatchObject({ code: QuicErrorCode.IDLE_TIMEOUT })
      expect(info).toMatchObject({ by: 'transport', error: { code: QuicErrorCode.IDLE_TIMEOUT } })
      console.log(`SIGKILLed peer: stream, pending accept and connection ended ${Date.now() - killedAt} ms later (idle timeout 1000 ms), after ${(received / 2 ** 20).toFixed(1)} MiB`)
    } finally {
      child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
      await listener.close()
    }
  })

  it('should fail the clients\' streams with the server\'s code when the server closes while they stream', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
    const clients = await Promise.all([0, 1, 2, 3, 4].map(() => connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert })))
    const streams = await Promise.all(clients.map(c => c.openStream()))
    const failures = streams.map(s => once(s, 'error'))
    const writing = streams.map(async (s) => {
      const chunk = Buffer.alloc(16 * 1024)
      for (let i = 0; i < 10_000 && !s.destroyed; i++) {
        if (!s.write(chunk)) {
          await new Promise<void>(resolve => {
            const done = (): void => { s.off('drain', done); s.off('close', done); resolve() }
            s.on('drain', done)
            s.on('close', done)
          })
        }
      }
    })
    const servers = await Promise.all(clients.map(() => listener.accept()))
    for (const server of servers) void server.acceptStream().then(s => s.resume(), () => {})
    await new Promise(resolve => setTimeout(resolve, 50))
    await listener.close()
    await Promise.all(servers.map(s => s.close({ code: 5 })))
    for (const [error] of await Promise.all(failures)) expect(error).toMatchObject({ code: QuicErrorCode.PEER_CLOSED, errorCode: 5n })
    for (const client of clients) expect(await client.closed).toMatchObject({ by: 'peer', code: 5n })
    await Promise.all(writing)
  })

  it('should close cleanly with 1,000 streams open', async () => {
    const { listener, client, server } = await pair({ maxBidirectionalStreams: 1000 })
    const streams: QuicStream[] = []
    for (let i = 0; i < 1000; i++) {
      const stream = await client.openStream()
      stream.write(Buffer.alloc(100, i))
      streams.push(stream)
    }
    await until(() => server.pendingStreams === 1000, '1,000 streams at the server')
    const serverStreams = await Promise.all(Array.from({ length: 1000 }, () => server.acceptStream()))
    const serverFailures = serverStreams.map(s => once(s, 'error'))
    const closedLocally = streams.map(s => once(s, 'close'))
    await client.close({ code: 9 })
    // This side closed: its streams end without an error; the peer's fail with its code.
    await Promise.all(closedLocally)
    expect(streams.every(s => s.errored === null)).toBe(true)
    for (const [error] of await Promise.all(serverFailures)) expect(error).toMatchObject({ code: QuicErrorCode.PEER_CLOSED })
    expect(await server.closed).toMatchObject({ by: 'peer', code: 9n })
    await listener.close()
  })

  it('should keep memory flat over 10,000 connection open/close cycles', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
    void (async () => { for await (const connection of listener) void connection.closed })()
    const port = listener.address().port
    const cycle = async (): Promise<void> => {
      const connection = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })
      await connection.close()
    }
    const run = async (count: number): Promise<void> => {
      let next = 0
      await Promise.all(Array.from({ length: 16 }, async () => { while (next++ < count) await cycle() }))
    }
    // What is really held, not garbage the collector has yet to reach (the process may be starved).
    const settled = async (): Promise<number> => {
      for (let i = 0; i < 3; i++) {
        globalThis.gc?.()
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      return process.memoryUsage().rss
    }
    await run(2000)
    const warm = await settled()
    const heap = process.memoryUsage().heapUsed
    const started = Date.now()
    await run(8000)
    const grown = await settled() - warm
    const heapGrown = process.memoryUsage().heapUsed - heap
    console.log(`10,000 open/close cycles: RSS after 2,000 ${(warm / 2 ** 20).toFixed(1)} MiB, grew ${(grown / 2 ** 20).toFixed(1)} MiB over the last 8,000 (JS heap ${(heapGrown / 2 ** 20).toFixed(1)} MiB; ${Math.round(8000 / ((Date.now() - started) / 1000))} cycles/s)`)
    // Nothing JS holds on to. Natively, MsQuic's and OpenSSL's caches and the allocator grow about
    // 2-3 KiB per connection until they level off (bench/memory-cycles.mjs: flat after ~55,000); a leak of
    // a connection's state (~80 KiB, see the idle benchmark) would show at once.
    expect(heapGrown).toBeLessThan(4 * 2 ** 20)
    expect(grown).toBeLessThan(64 * 2 ** 20)
    await listener.close()
  })
})
