import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { describe, it, expect } from 'vitest'
import { QuicConnection, QuicErrorCode, type QuicConnectionHandle } from '../../src/index.js'
import { pair, readAll, until } from '../helpers.js'
// @ts-expect-error a plain ES module fixture shared with the worker
import { payload, serveShare } from './fixtures/handoff-share.mjs'

const worker = fileURLToPath(new URL('./fixtures/handoff-worker.mjs', import.meta.url))

describe('moving a connection between threads', () => {
  it('should hand a connection to this same thread\'s adopt() with queued streams and their bytes', async () => {
    const { listener, client, server } = await pair()
    const early = await client.openStream()
    early.end('before the move')
    await new Promise(resolve => setTimeout(resolve, 50))
    const handle = server.transfer()
    await expect(server.openStream()).rejects.toMatchObject({ code: QuicErrorCode.TRANSFERRED })
    await expect(server.acceptStream()).rejects.toMatchObject({ code: QuicErrorCode.TRANSFERRED })
    const late = await client.openStream()
    late.end('during the move')
    const adopted = QuicConnection.adopt(handle)
    expect(() => QuicConnection.adopt(handle)).toThrow()
    const first = await adopted.acceptStream()
    expect((await readAll(first)).toString()).toBe('before the move')
    first.end('answer')
    expect((await readAll(early)).toString()).toBe('answer')
    const second = await adopted.acceptStream()
    expect((await readAll(second)).toString()).toBe('during the move')
    second.end()
    expect(adopted.alpnProtocol).toBe('test')
    expect(adopted.side).toBe('server')
    await client.close({ code: 4 })
    expect(await adopted.closed).toMatchObject({ by: 'peer', code: 4n })
    await listener.close()
  })

  it('should move right after stream.end(): streams the app holds stay here and usable, unaccepted ones travel', async () => {
    const { listener, client, server } = await pair()
    // Held here: one the app ended (its FIN may still be in flight), one still mid-exchange, and
    // one the server opened itself.
    const ended = await client.openStream()
    ended.end('ping')
    const endedHere = await server.acceptStream()
    endedHere.end('bye')  // FIN in flight when the connection moves
    const open = await client.openStream()
    open.write('half ')
    const openHere = await server.acceptStream()
    const opened = await server.openStream()
    opened.write('from the server ')
    // Not accepted yet: travels with the connection, bytes included.
    const queued = await client.openStream()
    queued.end('queued bytes')
    await until(() => server.pendingStreams === 1, 'the queued stream to arrive')
    await new Promise(resolve => setTimeout(resolve, 20))
    const handle = server.transfer()
    const adopted = QuicConnection.adopt(handle)
    // The held streams carry on in this thread, both directions.
    expect((await readAll(ended)).toString()).toBe('bye')
    open.end('done')
    expect((await readAll(openHere)).toString()).toBe('half done')
    openHere.end('ok')
    expect((await readAll(open)).toString()).toBe('ok')
    opened.end('end')
    const clientSide = await client.acceptStream()
    expect((await readAll(clientSide)).toString()).toBe('from the server end')
    clientSide.end()
    expect((await readAll(endedHere)).toString()).toBe('ping')
    // The queued one is accepted where the connection went, nothing lost or doubled.
    const moved = await adopted.acceptStream()
    expect((await readAll(moved)).toString()).toBe('queued bytes')
    moved.end('answered')
    expect((await readAll(queued)).toString()).toBe('answered')
    await client.close({ code: 2 })
    expect(await adopted.closed).toMatchObject({ by: 'peer', code: 2n })
    await listener.close()
  })

  it('should move several connections in one go while their events still wait in the native queue', async () => {
    const { cert, key } = await (await import('../helpers.js')).testCertificate()
    const { connect, listen } = await import('../../src/index.js')
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
    const clients = await Promise.all(Array.from({ length: 6 }, () => connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert })))
    const servers = await Promise.all(clients.map(() => listener.accept()))
    const streams = await Promise.all(clients.map(c => c.openStream()))
    streams.forEach((stream, i) => stream.end(`hello ${i}`))
    // Block this thread while the server side's events arrive: they wait natively, undelivered.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
    const handles = servers.map(server => server.transfer())
    const adopted = handles.map(handle => QuicConnection.adopt(handle))
    // Servers were accepted in handshake order, not client order: each answers whatever it got.
    await Promise.all(adopted.map(async connection => {
      const inbound = await connection.acceptStream()
      inbound.end(`${(await readAll(inbound)).toString()} answered`)
    }))
    const answers = await Promise.all(streams.map(async stream => (await readAll(stream)).toString()))
    expect(answers).toEqual(Array.from({ length: 6 }, (_, i) => `hello ${i} answered`))
    await Promise.all(clients.map(c => c.close()))
    await listener.close()
  })

  it('should lose nothing while the connection moves main -> worker A -> worker B -> main under a stream storm', async () => {
    const total = 10_000
    const { listener, client, server } = await pair({ maxBidirectionalStreams: 1000 })
    const workers = [new Worker(worker), new Worker(worker)]
    const started = Date.now()
    // The client opens every stream as fast as the server's credit allows.
    let opened = 0
    const sending = (async () => {
      const inFlight: Array<Promise<unknown>> = []
      for (let i = 0; i < total; i++) {
        const stream = await client.openStream()
        stream.end(payload(i))
        inFlight.push(readAll(stream))
        opened++
      }
      await Promise.all(inFlight)
    })()
    const seen = new Map<number, number>()
    let bad = 0
    let moves = 0
    let owner: QuicConnection | undefined = server
    let handle: QuicConnectionHandle | undefined
    const record = (result: { seen: number[], bad: number }): void => {
      for (const index of result.seen) seen.set(index, (seen.get(index) ?? 0) + 1)
      bad += result.bad
    }
    while (seen.size < total) {
      // This thread's turn, then worker A's, then worker B's.
      if (owner === undefined) owner = QuicConnection.adopt(handle as QuicConnectionHandle)
      record(await serveShare(owner, 300))
      await new Promise(resolve => setImmediate(resolve))
      handle = owner.transfer()
      owner = undefined
      moves++
      for (const w of workers) {
        w.postMessage({ handle, take: 300 })
        const [reply] = await once(w, 'message') as [{ handle: QuicConnectionHandle, seen: number[], bad: number }]
        record(reply)
        handle = reply.handle
        moves += 2
      }
    }
    await sending
    const seconds = (Date.now() - started) / 1000
    expect(bad).toBe(0)
    expect(seen.size).toBe(total)
    expect([...seen.values()].every(count => count === 1)).toBe(true)
    expect(opened).toBe(total)
    console.log(`handoff storm: ${total.toLocaleString('en-US')} streams, each accepted once with all its bytes, across ${moves} moves between 3 threads in ${seconds.toFixed(1)} s`)
    const last = QuicConnection.adopt(handle as QuicConnectionHandle)
    await client.close()
    await last.closed
    await Promise.all(workers.map(w => w.terminate()))
    await listener.close()
  }, 120_000)
})

describe('distributing connections over worker threads', () => {
  for (const strategy of ['round-robin', 'least-loaded'] as const) {
    it(`should spread connections over the workers (${strategy}), each served where it was adopted`, async () => {
      const { distributeConnections, connect, listen } = await import('../../src/index.js')
      const { testCertificate } = await import('../helpers.js')
      const { cert, key } = await testCertificate()
      const echoWorker = fileURLToPath(new URL('./fixtures/echo-worker.mjs', import.meta.url))
      const workers = [new Worker(echoWorker), new Worker(echoWorker)]
      const adoptedBy = new Map<number, number>()
      for (const w of workers) w.on('message', (m: { type: string, threadId: number }) => { if (m.type === 'adopted') adoptedBy.set(m.threadId, (adoptedBy.get(m.threadId) ?? 0) + 1) })
      const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
      const clients = await Promise.all(Array.from({ length: 6 }, () => connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert })))
      // Every client has sent its request before distribution starts, so the connections move one
      // right after another, each with events already waiting in this thread.
      const replies = await Promise.all(clients.map(async (client, i) => {
        const stream = await client.openStream()
        stream.end(`hello ${i}`)
        return stream
      }))
      await until(() => listener.pendingConnections === 6, 'six queued connections')
      await new Promise(resolve => setTimeout(resolve, 50))
      const distributing = distributeConnections(listener, workers, { strategy })
      const answers = await Promise.all(replies.map(async stream => (await readAll(stream)).toString()))
      answers.forEach((answer, i) => expect(answer).toMatch(new RegExp(`^\\d+:hello ${i}$`)))
      const threads = new Set(answers.map(a => a.split(':')[0]))
      expect(threads.size).toBe(2)
      // The workers' reports travel by postMessage, and may come after the answers: wait for all six.
      await until(() => [...adoptedBy.values()].reduce((a, b) => a + b, 0) === 6, 'every adoption to be reported')
      expect([...adoptedBy.values()].sort()).toEqual([3, 3])
      await Promise.all(clients.map(c => c.close()))
      await listener.close()
      await distributing
      await Promise.all(workers.map(w => w.terminate()))
    })
  }

  it('should close every connection a terminated worker owned towards its peer (200 connections)', async () => {
    const { distributeConnections, connect, listen } = await import('../../src/index.js')
    const { testCertificate } = await import('../helpers.js')
    const { cert, key } = await testCertificate()
    const echoWorker = fileURLToPath(new URL('./fixtures/echo-worker.mjs', import.meta.url))
    const worker = new Worker(echoWorker)
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
    void distributeConnections(listener, [worker])
    let adopted = 0
    worker.on('message', () => { adopted++ })
    // A long idle timeout: a peer left to notice on its own would wait a minute.
    const clients = await Promise.all(Array.from({ length: 200 }, async () => await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert, idleTimeout: 60_000 })))
    await Promise.all(clients.map(async client => {
      const stream = await client.openStream()
      stream.end('x')
      await readAll(stream)
    }))
    // Every echo came back through the worker; its adoption reports travel by postMessage and may
    // come after the answers (2 of 200 did, once, on a loaded machine): wait for all of them.
    await until(() => adopted === 200, 'every adoption to be reported')
    expect(adopted).toBe(200)
    const started = Date.now()
    await worker.terminate()
    const closes = await Promise.all(clients.map(async client => await client.closed))
    // Every peer heard the worker's CONNECTION_CLOSE: none timed out.
    expect(closes.filter(info => info.by === 'peer' && info.code === 0n)).toHaveLength(200)
    console.log(`worker terminated with 200 connections: every peer heard a close, the last ${Date.now() - started} ms later`)
    await listener.close()
  })
})
