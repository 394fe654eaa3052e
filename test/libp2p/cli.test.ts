import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { run } from '../child.js'

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

describe('node-msquic libp2p', () => {
  it('starts two nodes, connects them over QUIC, pings and echoes, and prints what happened', async () => {
    const result = await run(process.execPath, [cli, 'libp2p'], { timeout: 60_000 })
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/node A: 12D3KooW\w+/)
    expect(result.stdout).toMatch(/listening on \/ip4\/127\.0\.0\.1\/udp\/\d+\/quic-v1\/p2p\/12D3KooW/)
    expect(result.stdout).toMatch(/A dialed B in [\d.]+ ms: .*encryption native, muxer quic/)
    expect(result.stdout).toMatch(/A identified B in [\d.]+ ms: \d+ protocols \(.*\/echo\/1\.0\.0/)
    expect(result.stdout).toMatch(/A pinged B 5 times/)
    expect(result.stdout).toMatch(/A echoed 1,000 streams through B/)
    expect(result.stdout).toMatch(/libp2p demo done/)
  })
})
