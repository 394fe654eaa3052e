// The first hour with discovery, as a new user meets it: every mistake of test/discovery/mistakes.mjs,
// on the CLI as real processes (the build in dist/) and on the API, each with its coded error or
// usage line and exit code; Ctrl-C; and what is left running once a registry has stopped. The
// same list runs against the packed tarball in scripts/test-discovery-package.mjs.
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as discovery from '../../src/discovery/index.js'
import { LIVE, apiMistakes, cliMistakes, interruptions, runApiMistakes } from './mistakes.mjs'

const root = join(import.meta.dirname, '..', '..')
const cli = join(root, 'dist', 'cli.js')

interface Child { process: ChildProcess, output: () => string, exited: Promise<number | null>, waitFor: (pattern: RegExp) => Promise<RegExpMatchArray> }

/** The CLI as a process: its stdout and stderr together, line by line. */
function start (args: string[]): Child {
  const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const waiters = new Set<() => void>()
  for (const stream of [proc.stdout!, proc.stderr!]) createInterface({ input: stream }).on('line', line => { lines.push(line); for (const w of waiters) w() })
  const exited = new Promise<number | null>(resolve => proc.once('exit', code => { for (const w of waiters) w(); resolve(code) }))
  const waitFor = async (pattern: RegExp): Promise<RegExpMatchArray> => {
    for (;;) {
      const match = lines.join('\n').match(pattern)
      if (match !== null) return match
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${args[0]} exited (${proc.exitCode ?? proc.signalCode}):\n${lines.join('\n')}`)
      await new Promise<void>(resolve => { const w = (): void => { waiters.delete(w); resolve() }; waiters.add(w) })
    }
  }
  return { process: proc, output: () => lines.join('\n'), exited, waitFor }
}

let registry: discovery.ServiceRegistry
let provider: discovery.ServiceRegistry
let live: string
const withLive = (args: string[]): string[] => args.map(arg => arg === LIVE ? live : arg)

beforeAll(async () => {
  registry = await discovery.ServiceRegistry.create()
  live = registry.multiaddrs[0].toString()
  provider = await discovery.ServiceRegistry.create({ bootstrap: live })
  await provider.advertise('echo', { metadata: { region: 'eu' } })
})
afterAll(async () => { await Promise.all([provider?.stop(), registry?.stop()]) })

describe('the CLI refuses a mistake before it starts anything', () => {
  for (const { mistake, args, exit, output, usage } of cliMistakes) {
    it(`${mistake}: exit code ${exit}`, async () => {
      const started = performance.now()
      const child = start(withLive(args))
      const code = await child.exited
      console.log(`${mistake}: exit ${code} after ${(performance.now() - started).toFixed(0)} ms`)
      expect(code, child.output()).toBe(exit)
      expect(child.output()).toMatch(output)
      if (usage !== undefined) expect(child.output()).toMatch(usage)
    })
  }
})

describe('Ctrl-C', () => {
  for (const { command, args, ready, exit, output } of interruptions) {
    it(`stops ${command} and exits with ${exit}`, async () => {
      const child = start(withLive(args))
      await child.waitFor(ready)
      const started = performance.now()
      child.process.kill('SIGINT')
      const code = await child.exited
      // The target (200 ms) is reported, not asserted: the machine is shared.
      console.log(`${command}: exit ${code} ${(performance.now() - started).toFixed(0)} ms after SIGINT`)
      expect(code, child.output()).toBe(exit)
      if (output !== undefined) expect(child.output()).toMatch(output)
    })
  }
})

describe('the CLI end to end', () => {
  it('discover --call calls every provider and prints each outcome: a gone one and one that refuses included', async () => {
    // Three providers of "called": a CLI process that answers; one that stopped (without withdrawing)
    // after its record was stored in the DHT, so the record outlives it; one that never handles the
    // hello protocol.
    const answering = start(['provide', 'called', '--bootstrap', live, '--metadata', '{"n":1}'])
    const gone = await discovery.ServiceRegistry.create({ bootstrap: live })
    const refusing = await discovery.ServiceRegistry.create({ bootstrap: live })
    try {
      const [, answeringId] = await answering.waitFor(/provider (\S+): advertised/)
      await gone.advertise('called', { metadata: { n: 2 }, wait: 'published' })
      const goneId = `…${gone.peerId.toString().slice(-8)}`
      await gone.stop()
      await refusing.advertise('called', { metadata: { n: 3 } })
      const refusingId = `…${refusing.peerId.toString().slice(-8)}`
      const client = start(['discover', 'called', '--bootstrap', live, '--expect', '3', '--call', '--timeout', '5000'])
      const code = await client.exited
      const output = client.output()
      // The gone provider is listed only when its DHT copy came in before its failed connection gave
      // it away: discover() passes by a provider whose connection failed (issue 21), so 2 or 3.
      const discovered = Number(/discovered (\d) provider\(s\) of "called"/.exec(output)?.[1])
      expect([2, 3], output).toContain(discovered)
      expect(output).toContain(`called ${answeringId} in `)
      const failed = (id: string): RegExp => new RegExp(`calling ${id.replace('…', '.')} failed after [\\d.]+ ms: .*\\(ERR_DISCOVERY_DIAL_FAILED\\)`)
      expect(output).toMatch(failed(refusingId))
      if (discovered === 3) expect(output).toMatch(failed(goneId))
      else expect(output).not.toContain(goneId)
      expect(output).toMatch(new RegExp(`1 of ${discovered} provider\\(s\\) answered`))
      expect(code, output).toBe(1)
    } finally {
      answering.process.kill('SIGINT')
      await Promise.all([answering.exited, gone.stop(), refusing.stop()])
    }
  })

  it('every discovery command listens where --listen says, and a provider publishes that address', async () => {
    const cliRegistry = start(['registry', '--listen', '/ip4/127.0.0.1/udp/0/quic-v1', '--listen', '/ip6/::1/udp/0/quic-v1'])
    const provide = start(['provide', 'listening', '--bootstrap', live, '--listen', '/ip6/::1/udp/0/quic-v1'])
    try {
      await cliRegistry.waitFor(/bootstrap: \/ip6\/::1\/udp\/\d+\/quic-v1\/p2p\//)
      await cliRegistry.waitFor(/bootstrap: \/ip4\/127\.0\.0\.1\/udp\/\d+\/quic-v1\/p2p\//)
      await provide.waitFor(/advertised "listening"/)
      const record = await registry.resolve('listening', { timeout: 10_000 })
      expect(record.multiaddrs.length).toBeGreaterThan(0)
      for (const address of record.multiaddrs) expect(address).toMatch(/^\/ip6\/::1\/udp\/\d+\/quic-v1/)
      const client = start(['discover', 'listening', '--bootstrap', live, '--listen', '/ip4/127.0.0.1/udp/0/quic-v1', '--call'])
      expect(await client.exited, client.output()).toBe(0)
      expect(client.output()).toMatch(/at \/ip6\/::1\/udp\/\d+\/quic-v1/)
      expect(client.output()).toMatch(/1 of 1 provider\(s\) answered/)
    } finally {
      for (const child of [cliRegistry, provide]) child.process.kill('SIGINT')
      expect(await cliRegistry.exited).toBe(0)
      expect(await provide.exited).toBe(0)
    }
  })

  it('--help prints the command\'s usage, --listen included, and exits 0', async () => {
    for (const command of ['registry', 'provide', 'discover']) {
      const child = start([command, '--help'])
      expect(await child.exited).toBe(0)
      expect(child.output()).toMatch(new RegExp(`^Usage: node-msquic ${command} .*\\[--listen ADDR\\]`))
    }
  })
})

describe('the API refuses a mistake with a coded error', () => {
  it('every mistake of the list, at once', async () => {
    const results = await runApiMistakes(discovery, live)
    for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.mistake}: expected ${r.expected}, got ${r.got} in ${r.ms.toFixed(0)} ms`)
    expect(results.filter(r => !r.ok).map(r => `${r.mistake}: ${r.message}`)).toEqual([])
    expect(results).toHaveLength(apiMistakes.length)
  })

  it('misuse throws Node\'s ERR_INVALID_ARG_* errors: TypeError or RangeError', async () => {
    await expect(registry.resolve('echo', { fanOut: 1.5 })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
    await expect(registry.resolve('echo', { timeout: Infinity })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
    await expect(registry.resolve('echo', { signal: 'no' as any })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    expect(() => registry.discover('echo', { limit: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => registry.watch('x'.repeat(256))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    await expect(registry.handle('echo', () => 'x')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(registry.handle('/echo/1', 'x' as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(registry.advertise('echo', { ttl: 2 ** 31 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(registry.advertise('echo', { metadata: () => 1 } as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(registry.advertise('echo', { metadata: { n: 1n } } as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(registry.advertise('echo', { multiaddrs: Array(17).fill('/ip4/127.0.0.1/udp/1/quic-v1') })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(registry.request({} as any, '/echo/1', 'x')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(discovery.ServiceRegistry.create({ listen: '/ip4/127.0.0.1/tcp/0' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(discovery.ServiceRegistry.create({ queryTimeout: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(discovery.ServiceRegistry.create({ addresses: 'lan' as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(discovery.ServiceRegistry.create('here' as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    expect(() => new discovery.ServiceRegistry(undefined as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    // Nothing of these started a query.
    expect(registry.stats().pending).toBe(0)
  })

  it('a first node (firstNode: true) with no peer waits for its deadline instead of failing at once', async () => {
    const first = await discovery.ServiceRegistry.create({ firstNode: true })
    try {
      const error = await first.resolve('echo', { timeout: 300 }).catch((e: unknown) => e)
      expect([discovery.DiscoveryErrorCode.NOT_FOUND, discovery.DiscoveryErrorCode.TIMEOUT]).toContain((error as { code?: string }).code)
    } finally {
      await first.stop()
    }
  })

  it('a registry made without a bootstrap works once a peer has joined it', async () => {
    const alone = await discovery.ServiceRegistry.create()
    const joining = await discovery.ServiceRegistry.create({ bootstrap: alone.multiaddrs[0].toString() })
    try {
      await joining.advertise('joined', { ttl: 60_000 })
      expect((await alone.resolve('joined', { timeout: 5_000 })).peerId).toBe(joining.peerId.toString())
    } finally {
      await Promise.all([joining.stop(), alone.stop()])
    }
  })
})

describe('stop()', () => {
  it('leaves nothing that holds the process: it exits on its own at once', async () => {
    // A child process: a registry and a member that advertised and resolved, both stopped. If
    // anything still held the event loop 500 ms later (js-libp2p's address manager armed a 1 s
    // timer in stop()), the unref'd timer would fire and say so.
    const script = `
      const { ServiceRegistry } = await import('node-msquic/discovery')
      const registry = await ServiceRegistry.create()
      const member = await ServiceRegistry.create({ bootstrap: registry.multiaddrs[0].toString() })
      await member.advertise('x')
      await member.resolve('x')
      await Promise.all([member.stop(), registry.stop()])
      const stopped = performance.now()
      process.on('exit', () => console.log('exited ' + (performance.now() - stopped).toFixed(0) + ' ms after stop()'))
      setTimeout(() => console.log('still running 500 ms after stop(): ' + process.getActiveResourcesInfo().join(', ')), 500).unref()`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
    let output = ''
    child.stdout.on('data', chunk => { output += String(chunk) })
    const code = await new Promise(resolve => child.once('exit', resolve))
    console.log(output.trim())
    expect(code).toBe(0)
    expect(output).not.toMatch(/still running/)
    expect(output).toMatch(/exited \d+ ms after stop\(\)/)
  })
})
