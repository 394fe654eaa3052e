/**
 * The seeded random-abort soak (test/soak/quic.ts): 20,000 operations, 48 in flight, on four
 * long-lived connections with 16 streams of credit each, every plan a client or server written the
 * way Node code is written, cancelling at random points. Nothing may hang or leak: every stream
 * closes, every long-lived connection is usable at the end with no native stream left.
 * Under the sanitizers (npm run test:sanitized) it runs 2,000 operations.
 */
import { describe, expect, it } from 'vitest'
import { soak } from '../soak/quic.js'

const sanitized = (process.env.NODE_MSQUIC_ADDON ?? '').includes('sanitize')
const operations = Number(process.env.NODE_MSQUIC_SOAK_OPERATIONS ?? (sanitized ? 2_000 : 20_000))

describe('random-abort soak over raw QUIC', () => {
  it(`should finish ${operations} operations with nothing hung or leaked`, async () => {
    const uncaught: unknown[] = []
    const onUncaught = (error: unknown): void => { uncaught.push(error) }
    process.on('uncaughtException', onUncaught)
    const report = await soak({ seed: 20, operations, inFlight: 48, connections: 4, credit: 16, watchdog: sanitized ? 60_000 : 20_000 })
    process.off('uncaughtException', onUncaught)
    console.log(`soak: ${report.operations} operations in ${report.seconds.toFixed(1)} s, ${report.hung.length} hung, ` +
      `${report.leaked.client.length + report.leaked.server.length} streams leaked of ${report.streams.client} client / ${report.streams.server} server; ` +
      `errors seen by the apps: ${JSON.stringify(report.errors)}; plans: ${JSON.stringify(report.plans)}`)
    if (report.hung.length > 0 || report.leaked.client.length + report.leaked.server.length > 0) {
      console.log(JSON.stringify({ hung: report.hung.slice(0, 20), leaked: { client: report.leaked.client.slice(0, 20), server: report.leaked.server.slice(0, 20) }, connections: report.connections }, null, 1))
    }
    expect(uncaught).toEqual([])
    expect(report.hung).toEqual([])
    expect(report.leaked).toEqual({ client: [], server: [] })
    expect(report.connections).toEqual(Array.from({ length: 4 }, () => ({ echo: true, clientOpenStreams: 0, serverOpenStreams: 0 })))
    expect(report.request).toBe(true)
  }, 600_000)
})
