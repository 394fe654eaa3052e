/**
 * The seeded random-abort soak over libp2p streams (test/soak/libp2p.ts): 5,000 streams, 40 in
 * flight, on one connection with 16 streams of credit, aborted, half-closed either way or reset by
 * the peer at random points. Every stream reaches a final status on both sides; the connection is
 * usable at the end with no stream left, in js-libp2p or natively. 1,000 under the sanitizers.
 */
import { describe, expect, it } from 'vitest'
import { soakLibp2p } from '../soak/libp2p.js'

const sanitized = (process.env.NODE_MSQUIC_ADDON ?? '').includes('sanitize')
const operations = Number(process.env.NODE_MSQUIC_SOAK_OPERATIONS ?? (sanitized ? 1_000 : 5_000))

describe('random-abort soak over libp2p streams', () => {
  it(`should finish ${operations} streams with none hung or left open`, async () => {
    const uncaught: unknown[] = []
    const onUncaught = (error: unknown): void => { uncaught.push(error) }
    process.on('uncaughtException', onUncaught)
    const report = await soakLibp2p({ seed: 20, operations, inFlight: 40, credit: 16, watchdog: sanitized ? 60_000 : 20_000 })
    process.off('uncaughtException', onUncaught)
    console.log(`libp2p soak: ${report.operations} streams in ${report.seconds.toFixed(1)} s (${report.streams.server} reached the server), ` +
      `${report.hung.length} hung, ${report.unfinished.client.length + report.unfinished.server.length} not finished; ` +
      `errors seen: ${JSON.stringify(report.errors)}; plans: ${JSON.stringify(report.plans)}`)
    expect(uncaught).toEqual([])
    expect(report.hung).toEqual([])
    expect(report.unfinished).toEqual({ client: [], server: [] })
    expect(report.after).toEqual({ echo: true, clientStreams: 0, serverStreams: 0, clientNative: 0, serverNative: 0 })
  }, 600_000)
})
