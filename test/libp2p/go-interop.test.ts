/**
 * Interop with go-libp2p (test/interop/go-libp2p, one of the interop peers scripts/build-interop-peers.mjs
 * builds before `npm test` starts the tests): both directions, identify, ping and an echo protocol on
 * 1,000 streams at concurrency 10. go-libp2p negotiates lazily once identify told it the protocol
 * (proposal and data in one flight), which the listener side here takes.
 */
import { spawn } from 'node:child_process'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { MsQuicTransport } from '../../src/libp2p/index.js'
import { requirePeer } from '../interop/harness.js'
import { ECHO, createNode, echo, pool, type TestNode } from './nodes.js'

const nodes: TestNode[] = []
const children: Array<ReturnType<typeof spawn>> = []
afterEach(async () => {
  for (const child of children.splice(0)) child.stdin?.end()
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

async function run (file: string, args: string[]): Promise<{ status: number | null, stdout: string, stderr: string }> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const status = await new Promise<number | null>(resolve => child.on('exit', resolve))
  return { status, stdout, stderr }
}

describe('interop with go-libp2p', async () => {
  const binary = await requirePeer('go-libp2p')
  if (binary === undefined) return
  it('go-libp2p dials ours: identify, ping, 1,000 echo streams at concurrency 10 (lazy multistream-select)', async () => {
    let transport: MsQuicTransport | undefined
    const ours = await createNode({ transport: components => (transport = new MsQuicTransport(components)) })
    nodes.push(ours)
    // Not spawnSync: our node runs on this thread and must answer meanwhile.
    const result = await run(binary, ['dial', ours.getMultiaddrs()[0].toString(), '1000', '10'])
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    const report = JSON.parse(result.stdout.trim().split('\n').pop() as string)
    expect(report.protocols).toContain(ECHO)
    expect(report.protocols).toContain('/ipfs/ping/1.0.0')
    expect(report.rttMs).toBeGreaterThanOrEqual(0)
    expect(report.failed).toBe(0)
    expect(report.echoed).toBe(1000)
    expect(report.connections).toBe(1)
    // go-libp2p knew /echo/1.0.0 from identify and proposed it lazily
    expect(transport?.negotiation?.lazy).toBeGreaterThan(0)
  })

  it('ours dials go-libp2p: identify, ping, 1,000 echo streams at concurrency 10', async () => {
    const child = spawn(binary, ['listen'], { stdio: ['pipe', 'pipe', 'inherit'] })
    children.push(child)
    const listening = await new Promise<{ addr: string, peer: string }>((resolve, reject) => {
      let out = ''
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        const addr = /LISTEN (\S+)/.exec(out)?.[1]
        const peer = /PEER (\S+)/.exec(out)?.[1]
        if (addr !== undefined && peer !== undefined) resolve({ addr, peer })
      })
      child.on('exit', code => reject(new Error(`the go-libp2p peer exited with ${code}`)))
    })
    const ours = await createNode()
    nodes.push(ours)
    const go = peerIdFromString(listening.peer)
    const connection = await ours.dial(multiaddr(listening.addr))
    expect(connection.remotePeer.equals(go)).toBe(true)
    await expect.poll(async () => (await ours.peerStore.get(go)).protocols).toContain(ECHO)
    const agent = new TextDecoder().decode((await ours.peerStore.get(go)).metadata.get('AgentVersion'))
    expect(agent).toBe('go-libp2p interop peer')
    expect(await ours.services.ping.ping(go)).toBeGreaterThanOrEqual(0)
    let ok = 0
    await pool(1000, 10, async i => {
      const payload = Buffer.from(`echo ${i} from js`)
      if (Buffer.from(await echo(ours, go, payload)).equals(payload)) ok++
    })
    expect(ok).toBe(1000)
    expect(ours.getConnections(go)).toHaveLength(1)
  })
})
