/**
 * StreamCredit on real connections: the peer may open exactly what was granted (closing streams
 * brings no credit back, as MsQuic's own rule would), it hears when the peer is blocked, and a
 * closed connection takes no more grants.
 */
import { once } from 'node:events'
import { describe, it, expect } from 'vitest'
import { StreamCredit, type QuicStream } from '../../src/index.js'
import { pair, readAll } from '../helpers.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

describe('StreamCredit', () => {
  it('should let the peer open exactly what it grants, and say when the peer is blocked', async () => {
    const { listener, client, server } = await pair({ maxBidirectionalStreams: 2 })
    const credit = new StreamCredit(server)
    expect([credit.initial, credit.granted, credit.outstanding, credit.blocked]).toEqual([2, 0, 2, false])
    const echo = async (text: string): Promise<string> => {
      const stream = await client.openStream()
      stream.end(text)
      return (await readAll(stream)).toString()
    }
    const serve = async (): Promise<QuicStream> => {
      const stream = await server.acceptStream()
      stream.end(await readAll(stream))
      return stream
    }
    // The first credit: two streams, served and closed.
    const first = Promise.all([echo('a'), echo('b')])
    await serve()
    expect(credit.arrived()).toBe(false)
    await serve()
    expect(credit.arrived()).toBe(false)
    expect(await first).toEqual(['a', 'b'])
    expect([credit.outstanding, credit.blocked]).toEqual([0, true])
    // Both streams closed, yet no new credit: the third waits until it is granted.
    const blocked = once(credit, 'blocked')
    const third = echo('c')
    await blocked
    await sleep(100)
    expect(client.blockedStreams).toBe(1)
    expect(credit.grant(1)).toBe(true)
    expect([credit.granted, credit.blocked]).toEqual([1, false])
    await serve()
    expect(credit.arrived()).toBe(true)
    expect(await third).toBe('c')
    expect(credit.outstanding).toBe(0)
    await client.close()
    await server.closed
    expect(credit.grant(1)).toBe(false)
    expect(credit.granted).toBe(0)
    await listener.close()
  })

  it('should refuse bad arguments with coded errors', async () => {
    expect(() => new StreamCredit({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    const { listener, client, server } = await pair()
    const credit = new StreamCredit(server)
    expect(() => credit.grant(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => credit.grant(1.5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    await client.close()
    await listener.close()
  })
})
