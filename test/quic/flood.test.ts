import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain ES module shared with the benchmark (bench/flood.mjs), no typings
import { runFlood } from '../../bench/flood.mjs'

interface FloodResult { connected: number, total: number, p50: number, p99: number, failures: Record<string, number>, stats: { peakHandshaking: number, refusedBy: Record<string, number> }, replies?: { replies: { retry: number, handshake: number } } }

describe('a handshake flood', () => {
  it('should let legitimate clients connect while 3,000 handshakes never complete', async () => {
    const result = await runFlood({ flood: { replays: 2000, stalled: 500, wrongAlpn: 500 }, legit: 100 }) as FloodResult
    console.log(`flood: ${result.connected}/${result.total} legitimate clients connected, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms; ` +
      `peak handshaking ${result.stats.peakHandshaking}; replays answered: ${JSON.stringify(result.replies?.replies)}`)
    // Under the sanitizers the server runs several times slower: MsQuic's own load shedding (a
    // worker whose queue delay is too long refuses new connections) turned 10 of 100 away in one
    // run, and in another the replays admitted before Retry took over (666) with the stalled
    // clients filled maxHandshakes (1,024), so every legitimate client was refused
    // (CONNECTION_REFUSED) until handshakes expired. There the flood runs for memory safety and
    // refusals only; how many connect is asserted in the suite without sanitizers.
    const sanitized = (process.env.NODE_MSQUIC_ADDON ?? '').includes('sanitize')
    if (sanitized) {
      expect(Object.keys(result.failures).filter(code => code !== 'ERR_QUIC_CONNECTION_REFUSED')).toEqual([])
      expect(result.total).toBe(100)
    } else {
      expect(result.failures).toEqual({})
      expect(result.connected).toBe(result.total)
    }
    // The replays past the first few hundred were answered with a stateless Retry, not a handshake.
    // How many got a handshake first depends on how fast the server's threads run: the listener
    // turns Retry on when its worker counts the 128th handshake, and until then MsQuic's receive
    // path keeps admitting Initials (under 200 on a quiet machine, 300 beside a parallel suite, 665
    // of 2,000 in CI under load; under the sanitizers fewer replays are answered within the run,
    // 1,355 of 2,000 in one). Without Retry (retryAbove: false) every answer is a handshake.
    const replies = result.replies?.replies ?? { retry: 0, handshake: 0 }
    expect(replies.retry).toBeGreaterThan(replies.handshake)
    // The stalled clients passed the Retry and hold handshakes; never the backlog.
    expect(result.stats.peakHandshaking).toBeGreaterThanOrEqual(400)
    expect(result.stats.refusedBy.backlog).toBe(0)
  }, 120_000)
})
