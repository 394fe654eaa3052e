// Several hosts: a registry, three providers and a client, each in a network namespace of its own on
// one bridge (addresses from 198.18.0.0/24, the benchmarking range; the namespaces, the bridge and
// its links are made here and removed after), started the way the README's "Deploying on several
// hosts" tells a user to. Needs root and `ip` (iproute2): skipped without them, except in CI.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const exec = promisify(execFile)
const inCi = process.env.CI === 'true' || process.env.CI === '1'
const root = process.getuid?.() === 0
/** How a command starts on a host: the CLI a user runs (npm test builds dist first). */
const CLI = [join(import.meta.dirname, '..', '..', 'dist', 'cli.js')]
/** Every node listens on one UDP port, on every interface (the README's deployment). */
const LISTEN = ['--listen', '/ip4/0.0.0.0/udp/4001/quic-v1']
const TTL = 8_000

const tag = String(process.pid % 100_000)
const bridge = `nmqb${tag}`
const hosts = { registry: 10, eu: 11, us: 12, ap: 13, client: 14 } as const
type Host = keyof typeof hosts
const ns = (host: Host): string => `nmq${tag}h${hosts[host]}`
const ip = (host: Host): string => `198.18.0.${hosts[host]}`

const children: ChildProcess[] = []
let made = false

// `ip` runs without the sanitizers' preloaded runtimes (npm run test:sanitized), the node it starts
// with them.
const { LD_PRELOAD: preload, ...plainEnv } = process.env
const nodeEnv = preload === undefined ? [] : ['env', `LD_PRELOAD=${preload}`]

async function sh (...args: string[]): Promise<void> {
  await exec('ip', args, { env: plainEnv })
}

beforeAll(async () => {
  if (!root) return
  try {
    await sh('link', 'add', bridge, 'type', 'bridge')
    made = true
    await sh('link', 'set', bridge, 'up')
    for (const host of Object.keys(hosts) as Host[]) {
      const veth = `nmq${tag}v${hosts[host]}`
      await sh('netns', 'add', ns(host))
      await sh('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(host))
      await sh('link', 'set', veth, 'master', bridge)
      await sh('link', 'set', veth, 'up')
      await sh('-n', ns(host), 'addr', 'add', `${ip(host)}/24`, 'dev', 'eth0')
      await sh('-n', ns(host), 'link', 'set', 'eth0', 'up')
      await sh('-n', ns(host), 'link', 'set', 'lo', 'up')
    }
  } catch (error) {
    if (inCi) throw error
    made = false
  }
})

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await Promise.all(children.map(async c => { if (c.exitCode === null && c.signalCode === null) await new Promise(resolve => c.once('exit', resolve)) }))
  for (const host of Object.keys(hosts) as Host[]) await sh('netns', 'del', ns(host)).catch(() => {})
  await sh('link', 'del', bridge).catch(() => {})
})

/** Runs a CLI command on `host`; lines as they come, `waitFor(pattern)`, and the exit code. */
function run (host: Host, args: string[]): { process: ChildProcess, lines: string[], waitFor: (pattern: RegExp) => Promise<RegExpMatchArray>, exited: Promise<number | null> } {
  const proc = spawn('ip', ['netns', 'exec', ns(host), ...nodeEnv, process.execPath, ...CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: plainEnv })
  children.push(proc)
  const lines: string[] = []
  const waiters: Array<() => void> = []
  createInterface({ input: proc.stdout! }).on('line', line => { lines.push(line); for (const w of waiters.splice(0)) w() })
  createInterface({ input: proc.stderr! }).on('line', line => { lines.push(`stderr: ${line}`) })
  const exited = new Promise<number | null>(resolve => proc.once('exit', code => { for (const w of waiters.splice(0)) w(); resolve(code) }))
  const waitFor = async (pattern: RegExp): Promise<RegExpMatchArray> => {
    for (;;) {
      for (const line of lines) { const m = line.match(pattern); if (m !== null) return m }
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${args[0]} on ${host} exited (${proc.exitCode}): ${lines.join('\n')}`)
      await new Promise<void>(resolve => waiters.push(resolve))
    }
  }
  return { process: proc, lines, waitFor, exited }
}

/** Every address in `text` (multiaddrs) is on the hosts' network. */
function onTheBridge (addrs: string[]): void {
  expect(addrs.length).toBeGreaterThan(0)
  for (const a of addrs) expect(a, a).toMatch(/^\/ip4\/198\.18\.0\.\d+\/udp\/4001\/quic-v1(\/p2p\/\S+)?$/)
}

describe.skipIf(!root && !inCi)('several hosts: namespaces on one bridge (198.18.0.0/24)', () => {
  it('records carry only addresses the other hosts can use, every call answers, a killed provider is gone at once (and past its TTL) and costs the others nothing', async () => {
    expect(made, 'the namespaces and the bridge could not be made (needs root and iproute2)').toBe(true)
    const registry = run('registry', ['registry', ...LISTEN])
    await registry.waitFor(/^bootstrap: /)
    await new Promise(resolve => setTimeout(resolve, 100))
    const bootstraps = registry.lines.filter(l => l.startsWith('bootstrap: ')).map(l => l.slice('bootstrap: '.length))
    onTheBridge(bootstraps)
    const bootstrap = bootstraps.find(a => a.startsWith(`/ip4/${ip('registry')}/`))!
    expect(bootstrap).toBeDefined()

    const providers = (['eu', 'us', 'ap'] as const).map(host => ({ host, ...run(host, ['provide', 'echo', '--bootstrap', bootstrap, ...LISTEN, '--ttl', String(TTL)]) }))
    for (const p of providers) {
      const [, addrs] = await p.waitFor(/advertised "echo" in .*? at (\/.*)$/)
      onTheBridge(addrs.split(' '))
      expect(addrs).toContain(`/ip4/${ip(p.host)}/`)
    }

    const discover = async (expected: number): Promise<string[]> => {
      const client = run('client', ['discover', 'echo', '--bootstrap', bootstrap, ...LISTEN, '--expect', String(expected), '--call', '--timeout', '20000'])
      const code = await client.exited
      expect(code, client.lines.join('\n')).toBe(0)
      return client.lines
    }
    // Every provider found, each record with only the bridge's addresses, every call answered.
    let lines = await discover(3)
    const found = lines.filter(l => / found /.test(l))
    expect(found).toHaveLength(3)
    for (const line of found) onTheBridge(line.replace(/.* at /, '').split(' '))
    expect(lines.filter(l => / called /.test(l))).toHaveLength(3)
    expect(lines.filter(l => / failed /.test(l))).toEqual([])

    // One provider is killed (no goodbye): its records stay valid for up to a TTL, but the first failed
    // connection to it gives it away; the others answer every call, and nothing waits on it.
    const killed = providers[2]
    killed.process.kill('SIGKILL')
    await killed.exited
    lines = await discover(2)
    expect(lines.filter(l => / found /.test(l))).toHaveLength(2)
    expect(lines.join('\n')).not.toContain(`at /ip4/${ip(killed.host)}/`)
    expect(lines.filter(l => / called /.test(l))).toHaveLength(2)
    expect(lines.filter(l => / failed /.test(l))).toEqual([])

    // Past its TTL its records have expired everywhere: never returned again.
    await new Promise(resolve => setTimeout(resolve, TTL + 1_000))
    lines = await discover(2)
    expect(lines.filter(l => / found /.test(l))).toHaveLength(2)
    expect(lines.join('\n')).not.toContain(`at /ip4/${ip(killed.host)}/`)
    expect(lines.filter(l => / called /.test(l))).toHaveLength(2)
  }, 120_000)
})
