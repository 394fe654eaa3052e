import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { describe, it, expect } from 'vitest'
import type { QuicStream } from '../../src/index.js'
import { pair, readAll, until } from '../helpers.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

describe('stream credit', () => {
  it('should make openStream wait, and say so, when the peer\'s credit is used up, then finish as the server drains', async () => {
    const { listener, client, server } = await pair({ maxBidirectionalStreams: 10 })
    let mostBlocked = 0
    client.on('streamsBlocked', count => { mostBlocked = Math.max(mostBlocked, count) })
    const echoes = Array.from({ length: 50 }, async (_, i) => {
      const stream = await client.openStream()
      stream.end(`stream ${i}`)
      return (await readAll(stream)).toString()
    })
    // Ten streams hold all the credit while the server accepts nothing.
    await until(() => client.blockedStreams === 40, '40 blocked streams')
    let served = 0
    const serving = (async () => {
      while (served < 50) {
        const stream = await server.acceptStream()
        stream.end(await readAll(stream))
        served++
      }
    })()
    const results = await Promise.all(echoes)
    await serving
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => `stream ${i}`))
    expect(mostBlocked).toBe(40)
    expect(client.blockedStreams).toBe(0)
    await client.close()
    await listener.close()
  })

  it('should grant more credit at runtime', async () => {
    const { listener, client, server } = await pair({ maxBidirectionalStreams: 1 })
    const first = await client.openStream()
    const second = client.openStream()
    await until(() => client.blockedStreams === 1, 'a blocked stream')
    server.setStreamLimits({ bidirectional: 2 })
    const opened = await second
    expect(opened.blocked).toBe(false)
    first.destroy()
    opened.destroy()
    await client.close()
    await listener.close()
  })
})

describe('receive flow control', () => {
  it('should hold the sender back while the reader does not read, bound memory, and deliver everything intact later', async () => {
    const { listener, client, server } = await pair()
    const total = 64 * 1024 * 1024
    const chunk = 64 * 1024
    const clientStream = await client.openStream()
    clientStream.write('go')
    const serverStream = await server.acceptStream()
    let written = 0
    const expected = createHash('sha256')
    const writing = (async () => {
      for (let i = 0; written < total; i++) {
        const data = Buffer.alloc(chunk, i % 251)
        expected.update(data)
        written += data.length
        if (!serverStream.write(data)) await once(serverStream, 'drain')
      }
      serverStream.end()
    })()

    const before = process.memoryUsage().arrayBuffers
    await sleep(1000)
    const stalledAt = written
    await sleep(1000)
    const heldMemory = process.memoryUsage().arrayBuffers - before
    // No reads for two seconds: the sender made no progress in the second one.
    expect(written).toBe(stalledAt)
    expect(written).toBeLessThan(total)
    console.log(`slow reader: sender stalled after ${(stalledAt / 2 ** 20).toFixed(1)} MiB of 64 MiB; ` +
      `process array-buffer memory grew by ${(heldMemory / 2 ** 20).toFixed(1)} MiB while paused`)
    expect(heldMemory).toBeLessThan(32 * 2 ** 20)

    const received = createHash('sha256')
    let length = 0
    for await (const data of clientStream.iterator({ destroyOnReturn: false })) {
      received.update(data as Buffer)
      length += (data as Buffer).length
    }
    await writing
    expect(length).toBe(total)
    expect(received.digest('hex')).toBe(expected.digest('hex'))
    clientStream.end()
    await readAll(serverStream)
    await client.close()
    await listener.close()
  })
})

describe('QuicStream as a Duplex', () => {
  it('should work with pipeline in both directions', async () => {
    const { pipeline } = await import('node:stream/promises')
    const { Readable } = await import('node:stream')
    const { listener, client, server } = await pair()
    const stream = await client.openStream()
    const data = Buffer.alloc(3 * 1024 * 1024, 7)
    const sending = pipeline(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), stream)
    const inbound: QuicStream = await server.acceptStream()
    const echoing = pipeline(inbound, async function * (source) { for await (const c of source) yield c }, inbound)
    const back = await readAll(stream)
    await sending
    await echoing
    expect(back.equals(data)).toBe(true)
    await client.close()
    await listener.close()
  })
})
