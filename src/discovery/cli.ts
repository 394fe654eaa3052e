/**
 * The discovery commands of the `node-msquic` CLI, and the demo's discovery scene.
 *   node-msquic registry                          a bootstrap node
 *   node-msquic provide <name> --bootstrap <addr> advertises <name> and answers hello calls
 *   node-msquic discover <name> --bootstrap <addr> finds the providers of <name> (and calls them)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { ServiceRegistry, type ServiceRecord } from './index.js'

/** The protocol `provide` answers on and `discover --call` calls. */
export const HELLO_PROTOCOL = '/node-msquic/hello/1.0.0'

/** The parsed options of the `node-msquic` command line. */
export type CliValues = Record<string, string | boolean | string[] | undefined>

const ms = (start: number): string => `${(performance.now() - start).toFixed(1)} ms`
const list = (value: CliValues[string]): string[] => value === undefined ? [] : Array.isArray(value) ? value : [String(value)]
const short = (peer: string): string => `…${peer.slice(-8)}`

/** Resolves when SIGINT or SIGTERM arrives. */
async function untilSignal (): Promise<void> {
  await new Promise<void>(resolve => { process.once('SIGINT', () => resolve()); process.once('SIGTERM', () => resolve()) })
}

/** `node-msquic registry`: a bootstrap node until SIGINT or SIGTERM. */
export async function registryCommand (values: CliValues): Promise<void> {
  const started = performance.now()
  const registry = await ServiceRegistry.create({ listen: list(values.listen).length > 0 ? list(values.listen) : undefined })
  console.log(`registry: ${registry.peerId.toString()} started in ${ms(started)}`)
  for (const addr of registry.multiaddrs) console.log(`bootstrap: ${addr.toString()}`)
  await untilSignal()
  await registry.stop()
}

/** `node-msquic provide NAME`: advertises NAME and answers hello calls until SIGINT or SIGTERM. */
export async function provideCommand (name: string | undefined, values: CliValues): Promise<void> {
  if (name === undefined) throw new Error('provide needs a service name')
  let started = performance.now()
  const registry = await ServiceRegistry.create({ bootstrap: list(values.bootstrap) })
  console.log(`provider ${short(registry.peerId.toString())}: joined in ${ms(started)}`)
  await registry.handle(HELLO_PROTOCOL, (request, { peerId }) => `hello ${Buffer.from(request).toString()}, from ${short(registry.peerId.toString())} (${name}), you are ${short(peerId.toString())}`)
  started = performance.now()
  const metadata = typeof values.metadata === 'string' ? JSON.parse(values.metadata) : { pid: process.pid }
  await registry.advertise(name, { metadata, ttl: values.ttl !== undefined ? Number(values.ttl) : undefined })
  console.log(`provider ${short(registry.peerId.toString())}: advertised "${name}" in ${ms(started)}`)
  await untilSignal()
  await registry.stop()
}

/** `node-msquic discover NAME`: resolves NAME, lists its providers (`--expect N`) and calls each (`--call`). */
export async function discoverCommand (name: string | undefined, values: CliValues): Promise<void> {
  if (name === undefined) throw new Error('discover needs a service name')
  const timeout = values.timeout !== undefined ? Number(values.timeout) : 10_000
  const expected = values.expect !== undefined ? Number(values.expect) : 1
  let started = performance.now()
  const registry = await ServiceRegistry.create({ bootstrap: list(values.bootstrap) })
  const me = short(registry.peerId.toString())
  console.log(`client ${me}: joined in ${ms(started)}`)
  try {
    started = performance.now()
    const first = await registry.resolve(name, { timeout })
    console.log(`client ${me}: resolved "${name}" in ${ms(started)}: ${short(first.peerId)} at ${first.multiaddrs[0] ?? '(no address)'}`)
    // Providers appear as the DHT finds them; ask again until all that are expected are in.
    const found = new Map<string, ServiceRecord>()
    started = performance.now()
    const deadline = performance.now() + timeout
    while (found.size < expected && performance.now() < deadline) {
      for await (const record of registry.discover(name, { timeout: Math.max(100, deadline - performance.now()) })) {
        if (found.has(record.peerId)) continue
        found.set(record.peerId, record)
        console.log(`client ${me}: found ${short(record.peerId)} after ${ms(started)} (metadata ${JSON.stringify(record.metadata)}, expires in ${Math.round((record.expiresAt - Date.now()) / 1000)} s)`)
      }
      if (found.size < expected) await new Promise(resolve => setTimeout(resolve, 50))
    }
    console.log(`client ${me}: discovered ${found.size} provider(s) of "${name}" in ${ms(started)}`)
    if (values.call === true) {
      for (const record of found.values()) {
        const t = performance.now()
        const answer = Buffer.from(await registry.request(record, HELLO_PROTOCOL, me)).toString()
        console.log(`client ${me}: called ${short(record.peerId)} in ${ms(t)}: "${answer}"`)
      }
    }
    if (found.size < expected) {
      process.exitCode = 1
      console.log(`client ${me}: expected ${expected}`)
    }
  } finally {
    await registry.stop()
  }
}

/** Spawns this CLI with `args`; resolves with the child once a line matches `ready`. */
async function child (args: string[], prefix: string, ready: RegExp): Promise<{ process: ChildProcess, match: RegExpMatchArray }> {
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url))
  const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  return await new Promise((resolve, reject) => {
    let done = false
    createInterface({ input: proc.stdout! }).on('line', line => {
      console.log(`  [${prefix}] ${line}`)
      const match = line.match(ready)
      if (match !== null && !done) { done = true; resolve({ process: proc, match }) }
    })
    proc.once('exit', code => { if (!done) { done = true; reject(new Error(`${prefix} exited (${code}) before it was ready`)) } })
  })
}

/** The demo's discovery scene: a registry, three providers and a client, each its own process. */
export async function discoveryScene (): Promise<void> {
  try {
    await Promise.all([import('libp2p'), import('@libp2p/kad-dht'), import('@libp2p/identify'), import('@libp2p/ping')])
  } catch {
    console.log('\n(the discovery scene needs libp2p, @libp2p/kad-dht, @libp2p/identify and @libp2p/ping installed)')
    return
  }
  console.log('\ndiscovery: a registry, three providers and a client, each a separate process on loopback (node-msquic/discovery on kad-dht)')
  const children: ChildProcess[] = []
  const started = performance.now()
  try {
    const registry = await child(['registry'], 'registry', /^bootstrap: (\S+)/)
    children.push(registry.process)
    const bootstrap = registry.match[1]
    const providers = await Promise.all(['eu', 'us', 'ap'].map(async region => await child(['provide', 'echo', '--bootstrap', bootstrap, '--metadata', JSON.stringify({ region })], `provider ${region}`, /advertised/)))
    children.push(...providers.map(p => p.process))
    const client = await child(['discover', 'echo', '--bootstrap', bootstrap, '--expect', '3', '--call'], 'client', /discovered|expected/)
    children.push(client.process)
    const code = await new Promise<number | null>(resolve => client.process.exitCode !== null ? resolve(client.process.exitCode) : client.process.once('exit', resolve))
    if (code !== 0) throw new Error(`the discovery client exited with ${code}`)
    console.log(`discovery scene done in ${ms(started)}`)
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
    await Promise.all(children.map(async c => { if (c.exitCode === null && c.signalCode === null) await new Promise(resolve => c.once('exit', resolve)) }))
  }
}
