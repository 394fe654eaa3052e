// A foreign Kademlia: a go-libp2p node running go-libp2p-kad-dht (test/interop/go-kad) on the
// registries' private protocol, QUIC only, joins a network of registries. It speaks none of their own
// protocols (record, providers), only the DHT. Built and cached with the other interop peers
// (scripts/build-interop-peers.mjs, which npm test runs first); skipped when it is not built, except
// in CI.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { afterEach, describe, expect, it } from 'vitest'
import { nameToCid, type ServiceRegistry } from '../../src/discovery/index.js'
import { until } from '../helpers.js'
import { requirePeer } from '../interop/harness.js'
import { Network } from './network.js'

const binary = await requirePeer('go-kad')

const net = new Network()
const children: ChildProcess[] = []
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.stdin?.end()
    if (child.exitCode === null) await new Promise(resolve => child.once('exit', resolve))
  }
  await net.stop()
})

/** The go peer, joined through `bootstrap`; `command()` sends one line and resolves with its JSON answer. */
async function goPeer (bootstrap: string): Promise<{ id: string, command: (line: string) => Promise<any> }> {
  const child = spawn(binary!, [bootstrap], { stdio: ['pipe', 'pipe', 'pipe'] })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const lines: string[] = []
  const waiters: Array<() => void> = []
  createInterface({ input: child.stdout! }).on('line', line => { lines.push(line); for (const w of waiters.splice(0)) w() })
  child.once('exit', () => { for (const w of waiters.splice(0)) w() })
  const next = async (pattern: RegExp): Promise<string> => {
    for (;;) {
      const i = lines.findIndex(l => pattern.test(l))
      if (i !== -1) return lines.splice(i, 1)[0]
      if (child.exitCode !== null) throw new Error(`the go-kad peer exited (${child.exitCode}): ${stderr}`)
      await new Promise<void>(resolve => waiters.push(resolve))
    }
  }
  const id = (await next(/^PEER /)).split(' ')[1]
  return {
    id,
    command: async line => {
      child.stdin!.write(`${line}\n`)
      return JSON.parse(await next(/^\{/))
    }
  }
}

const dhtOf = (registry: ServiceRegistry): any => (registry.libp2p.services as any).dht

describe.skipIf(binary === undefined)('a go-libp2p-kad-dht node on /node-msquic/kad/1.0.0', () => {
  it('joins the registries\' network: tables fill both ways, providers are found both ways, resolves go on, malformed messages are counted and never fatal', async () => {
    const registries = [await net.bootstrap(), ...await net.members(6)]
    await registries[1].advertise('from-registry', { metadata: { by: 'registry' }, wait: 'published' })
    const go = await goPeer(registries[0].multiaddrs[0].toString())

    // Its routing table fills with the registries, and theirs take it in.
    let table: { rt: number, peers: string[] } = { rt: 0, peers: [] }
    for (let i = 0; i < 100 && table.rt < registries.length; i++) {
      table = await go.command('rt')
      if (table.rt < registries.length) await new Promise(resolve => setTimeout(resolve, 100))
    }
    expect(new Set(table.peers)).toEqual(new Set(registries.map(r => r.peerId.toString())))
    // (Each registry's table: the other registries and the go node.)
    await until(() => registries.every(r => r.stats().routingTable === registries.length), 'the go node in every registry\'s routing table')

    // It finds a registry's provider record of a service; a registry finds the provider record it publishes.
    expect((await go.command('findprov from-registry')).providers).toContain(registries[1].peerId.toString())
    expect(await go.command('provide from-go')).toMatchObject({ ok: true })
    const found: string[] = []
    for await (const event of dhtOf(registries[4]).findProviders(nameToCid('from-go'), { signal: AbortSignal.timeout(10_000) })) {
      if (event.name === 'PROVIDER') found.push(...event.providers.map((p: any) => p.id.toString()))
    }
    expect(found).toContain(go.id)

    // Records the registries must refuse: garbage under its record key (counted as malformed where it
    // lands), and garbage bytes on a DHT stream (the stream fails, the node does not).
    const before = registries.reduce((n, r) => n + (r.stats().rejected.malformed ?? 0), 0)
    expect(await go.command('putbad from-go')).toMatchObject({ ok: true })
    expect(registries.reduce((n, r) => n + (r.stats().rejected.malformed ?? 0), 0)).toBeGreaterThan(before)
    for (const r of registries.slice(0, 3)) expect(await go.command(`junk ${r.peerId.toString()}`)).toMatchObject({ ok: true })

    // The registries keep resolving with it in their routing tables (their nearby rounds may ask it
    // for providers: it refuses the protocol and the next nearest peer is asked).
    const failures: string[] = []
    for (let i = 0; i < 60; i++) {
      const from = registries[i % registries.length]
      if (from === registries[1]) continue
      try {
        const record = await from.resolve('from-registry')
        if (record.peerId !== registries[1].peerId.toString()) failures.push(`${i}: wrong provider`)
      } catch (error) {
        failures.push(`${i}: ${(error as Error).message}`)
      }
    }
    expect(failures).toEqual([])
    // A name only the go node provides: it is found as a provider, but has no record to give (it
    // speaks no record protocol, and published none): not found, no timeout.
    await expect(registries[5].resolve('from-go', { timeout: 5_000 })).rejects.toMatchObject({ code: 'ERR_DISCOVERY_NOT_FOUND' })
    for (const r of registries) expect(r.stats().pending).toBe(0)
  }, 120_000)
})
