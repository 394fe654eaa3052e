import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { describe, it, expect } from 'vitest'
import { listen, QuicErrorCode } from '../../src/index.js'
import { run } from '../child.js'
import { pair, readAll, testCertificate } from '../helpers.js'

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

describe('closing', () => {
  it('should make close() idempotent on listeners and connections', async () => {
    const { listener, client, server } = await pair()
    const first = client.close({ code: 7 })
    const second = client.close()
    expect(await first).toEqual(await second)
    expect((await server.closed)).toMatchObject({ by: 'peer', code: 7n })
    await Promise.all([listener.close(), listener.close()])
    await listener.close()
  })

  it('should reject a pending accept() with ERR_QUIC_CLOSED when the listener closes', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
    const pending = expect(listener.accept()).rejects.toMatchObject({ code: QuicErrorCode.CLOSED })
    await listener.close()
    await pending
    await expect(listener.accept()).rejects.toMatchObject({ code: QuicErrorCode.CLOSED })
  })

  it('should reject a pending acceptStream() when the connection closes, after handing out what arrived', async () => {
    const { listener, client, server } = await pair()
    const stream = await client.openStream()
    stream.end('before close')
    const first = await server.acceptStream()
    expect((await readAll(first)).toString()).toBe('before close')
    // `first` is still open on the server: the peer's close fails it with the peer's reason.
    const streamError = once(first, 'error')
    const pending = expect(server.acceptStream()).rejects.toMatchObject({ code: QuicErrorCode.PEER_CLOSED })
    await client.close({ code: 3 })
    await pending
    expect((await streamError)[0]).toMatchObject({ code: QuicErrorCode.PEER_CLOSED, errorCode: 3n })
    await listener.close()
  })
})

describe('environment teardown', () => {
  for (const mode of ['exit', 'throw']) {
    it(`should let a process with open connections end promptly (${mode})`, async () => {
      const started = Date.now()
      const result = await run(process.execPath, [fixture('open-connections.mjs'), mode], { timeout: 20_000 })
      expect(result.signal).toBeNull()
      expect(result.status).toBe(mode === 'exit' ? 0 : 1)
      if (mode === 'throw') expect(result.stderr).toMatch(/deliberate/)
      console.log(`process ${mode} with open connections: ended in ${Date.now() - started} ms (including start-up)`)
    })
  }

  it('should survive terminating a worker thread that owns open connections, leaving this thread\'s alone', async () => {
    // A connection of this thread, open across the workers' lives and deaths.
    const mine = await pair()
    // The last two die with 1,000 connections just asked for: starts still queued on the
    // blocking-calls thread are dropped, and those connections, never started, close silently.
    for (const mode of ['worker', 'worker-starting', 'worker-starting']) {
      const worker = new Worker(fixture('open-connections.mjs'), { argv: [mode] })
      const [message] = await once(worker, 'message')
      expect(message).toBe('ready')
      expect(await worker.terminate()).toBe(1)
    }
    // This thread's connection still works, and new ones can be made.
    const stream = await mine.client.openStream()
    stream.end('still mine')
    const inbound = await mine.server.acceptStream()
    inbound.end(await readAll(inbound))
    expect((await readAll(stream)).toString()).toBe('still mine')
    const { listener, client } = await pair()
    await client.close()
    await listener.close()
    await mine.client.close()
    await mine.listener.close()
  })

  it('should collect idle, closed objects without crashing', async () => {
    const result = await run(process.execPath, ['--expose-gc', fixture('gc.mjs')], { timeout: 30_000 })
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    const { created, finalised } = JSON.parse(result.stdout)
    expect(finalised).toBeGreaterThan(created / 2)
    console.log(`gc: ${finalised} of ${created} closed wrappers finalised`)
  })
})
