/**
 * The discovery commands of the `node-msquic` CLI, and the demo's discovery scene.
 *   node-msquic registry [--listen ADDR]                      a bootstrap node
 *   node-msquic provide NAME --bootstrap ADDR [...]           advertises NAME and answers hello calls
 *   node-msquic discover NAME --bootstrap ADDR [...]          finds the providers of NAME (and calls them)
 * Each command's arguments are checked by its parse() (with the discovery layer's own argument
 * checks, options.ts) before anything loads or starts; the registry is stopped however a command
 * ends. This module loads none of libp2p's packages until a command runs (entry.ts checks them).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ParseArgsConfig } from 'node:util'
import { MAX_METADATA_BYTES, MIN_TTL, metadataBytes, milliseconds, multiaddrList, serviceName } from './options.js'
import { integer, invalidArgValue } from '../args.js'
import type { JsonValue, ServiceRecord } from './record.js'
import type { ServiceRegistry, ServiceRegistryInit } from './registry.js'

/** The protocol `provide` answers on and `discover --call` calls. */
export const HELLO_PROTOCOL = '/node-msquic/hello/1.0.0'

/** How long `discover` looks for its providers when given no --timeout (ms). */
export const DISCOVER_TIMEOUT = 10_000

/** The parsed options of the `node-msquic` command line. */
export type CliValues = Record<string, string | boolean | string[] | undefined>

/** One command of the CLI: its options, its usage, a check of its arguments, and what it runs. */
export interface Command<Args = any> {
  /** The usage line(s), as `--help` and a usage error print them. */
  usage: string
  /** Its options, for node:util's parseArgs (strict: any other is a usage error). */
  options: NonNullable<ParseArgsConfig['options']>
  /** Checks the arguments (throws on a bad one: a usage error, exit code 2); nothing starts here. */
  parse: (values: CliValues, positionals: string[]) => Args
  /** Runs the command until done or until `signal` aborts (Ctrl-C); resolves with the exit code. */
  run: (args: Args, signal: AbortSignal) => Promise<number>
}

const ms = (start: number): string => `${(performance.now() - start).toFixed(1)} ms`
const short = (peer: string): string => `…${peer.slice(-8)}`
const listen = { listen: { type: 'string', multiple: true } } as const
const network = { ...listen, bootstrap: { type: 'string', multiple: true } } as const

/** Checked by parse(): where a command listens, and for provide and discover where it joins. */
interface NetworkArgs {
  listen?: string[]
  bootstrap: string[]
}

function networkArgs (command: string, values: CliValues, joins: boolean): NetworkArgs {
  const listenAt = values.listen === undefined ? undefined : multiaddrList('--listen', oneOrMore(values.listen), { dial: false, quic: true })
  if (!joins) return { listen: listenAt, bootstrap: [] }
  if (values.bootstrap === undefined) throw new Error(`${command} needs --bootstrap ADDR: the address \`node-msquic registry\` prints ("bootstrap: /ip4/…/udp/…/quic-v1/p2p/…")`)
  return { listen: listenAt, bootstrap: multiaddrList('--bootstrap', oneOrMore(values.bootstrap), { dial: true, quic: true }) }
}

function nameArg (command: string, positionals: string[]): string {
  if (positionals.length === 0) throw new Error(`${command} needs a service NAME`)
  if (positionals.length > 1) throw new Error(`${command} takes one NAME; got ${positionals.map(p => JSON.stringify(p)).join(' ')}`)
  return serviceName(positionals[0], 'NAME')
}

/** A whole number from the command line (`--ttl 1m` is refused as it is typed, not as NaN). */
export function wholeNumber (flag: string, text: unknown, unit = ''): number {
  if (typeof text !== 'string' || !/^\d+$/.test(text)) throw invalidArgValue(flag, `must be a whole number${unit}`, text)
  return Number(text)
}

/** A repeatable option given once is named without an index in errors. */
const oneOrMore = (value: CliValues[string]): CliValues[string] => Array.isArray(value) && value.length === 1 ? value[0] : value

/**
 * Runs `fn` on a registry started with `init`, and stops the registry however `fn` ends. `signal`
 * (Ctrl-C) also ends the wait for the start; a registry that starts after it is stopped at once.
 */
async function withRegistry (init: ServiceRegistryInit, signal: AbortSignal, fn: (registry: ServiceRegistry) => Promise<number>): Promise<number> {
  const { ServiceRegistry } = await import('./entry.js')
  const starting = ServiceRegistry.create(init)
  const interrupted = new Promise<never>((resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason); void starting.then(async registry => { await registry.stop() }, () => {}) }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    void starting.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => {})
  })
  const registry = await Promise.race([starting, interrupted])
  try {
    return await fn(registry)
  } finally {
    await registry.stop()
  }
}

/** Resolves when `signal` aborts. */
async function until (signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
}

/** `node-msquic registry`: a bootstrap node until Ctrl-C (SIGINT) or SIGTERM. */
const registryCommand: Command<NetworkArgs> = {
  usage: `node-msquic registry [--listen ADDR]...
                                   a discovery registry (a kad-dht bootstrap node); prints its address`,
  options: listen,
  parse: (values, positionals) => {
    if (positionals.length > 0) throw new Error(`registry takes no NAME; got ${JSON.stringify(positionals[0])}`)
    return networkArgs('registry', values, false)
  },
  run: async (args, signal) => {
    const started = performance.now()
    return await withRegistry({ listen: args.listen }, signal, async registry => {
      console.log(`registry: ${registry.peerId.toString()} started in ${ms(started)}`)
      for (const addr of registry.multiaddrs) console.log(`bootstrap: ${addr.toString()}`)
      await until(signal)
      return 0
    })
  }
}

interface ProvideArgs extends NetworkArgs {
  name: string
  metadata?: JsonValue
  ttl?: number
}

/** `node-msquic provide NAME`: advertises NAME and answers hello calls until Ctrl-C or SIGTERM. */
const provideCommand: Command<ProvideArgs> = {
  usage: `node-msquic provide NAME --bootstrap ADDR [--listen ADDR]... [--metadata JSON] [--ttl MS]
                                   advertise NAME and answer hello calls until stopped`,
  options: { ...network, metadata: { type: 'string' }, ttl: { type: 'string' } },
  parse: (values, positionals) => {
    const name = nameArg('provide', positionals)
    let metadata: JsonValue | undefined
    if (values.metadata !== undefined) {
      try {
        metadata = JSON.parse(String(values.metadata))
      } catch (error) {
        throw new Error(`--metadata must be JSON, such as '{"region":"eu"}' (${(error as Error).message}); received ${String(values.metadata)}`)
      }
      if (metadataBytes(metadata) > MAX_METADATA_BYTES) throw invalidArgValue('--metadata', `must be at most ${MAX_METADATA_BYTES} bytes`, values.metadata, true)
    }
    const ttl = values.ttl === undefined ? undefined : milliseconds('--ttl', wholeNumber('--ttl', values.ttl, ' of milliseconds'), MIN_TTL)
    return { ...networkArgs('provide', values, true), name, metadata, ttl }
  },
  run: async (args, signal) => {
    let started = performance.now()
    return await withRegistry({ listen: args.listen, bootstrap: args.bootstrap }, signal, async registry => {
      const me = short(registry.peerId.toString())
      console.log(`provider ${me}: joined in ${ms(started)}`)
      await registry.handle(HELLO_PROTOCOL, (request, { peerId }) => `hello ${Buffer.from(request).toString()}, from ${me} (${args.name}), you are ${short(peerId.toString())}`)
      started = performance.now()
      const advertisement = await registry.advertise(args.name, { metadata: args.metadata ?? { pid: process.pid }, ttl: args.ttl, signal })
      // The addresses its record carries: what discoverers on other hosts will dial.
      console.log(`provider ${me}: advertised "${args.name}" in ${ms(started)} at ${advertisement.record?.multiaddrs.join(' ') ?? '(no record)'}`)
      await until(signal)
      return 0
    })
  }
}

interface DiscoverArgs extends NetworkArgs {
  name: string
  expect: number
  timeout: number
  call: boolean
}

/** `node-msquic discover NAME`: lists NAME's providers (`--expect N` of them) and calls each (`--call`). */
const discoverCommand: Command<DiscoverArgs> = {
  usage: `node-msquic discover NAME --bootstrap ADDR [--listen ADDR]... [--expect N] [--timeout MS] [--call]
                                   find NAME's providers (N of them, default 1; within MS, default ${DISCOVER_TIMEOUT})
                                   and with --call call each; exit code 1 if fewer are found or a call fails`,
  options: { ...network, expect: { type: 'string' }, timeout: { type: 'string' }, call: { type: 'boolean' } },
  parse: (values, positionals) => {
    const name = nameArg('discover', positionals)
    const expect = values.expect === undefined ? 1 : integer('--expect', wholeNumber('--expect', values.expect), { min: 1 })
    const timeout = values.timeout === undefined ? DISCOVER_TIMEOUT : milliseconds('--timeout', wholeNumber('--timeout', values.timeout, ' of milliseconds'))
    return { ...networkArgs('discover', values, true), name, expect, timeout, call: values.call === true }
  },
  run: async (args, signal) => {
    let started = performance.now()
    return await withRegistry({ listen: args.listen, bootstrap: args.bootstrap }, signal, async registry => {
      const me = short(registry.peerId.toString())
      console.log(`client ${me}: joined in ${ms(started)}`)
      started = performance.now()
      const deadline = started + args.timeout
      const first = await registry.resolve(args.name, { timeout: args.timeout, signal })
      console.log(`client ${me}: resolved "${args.name}" in ${ms(started)}: ${short(first.peerId)} at ${first.multiaddrs[0] ?? '(no address)'}`)
      // Providers appear as the DHT finds them; ask again until all that are expected are in.
      const found = new Map<string, ServiceRecord>()
      started = performance.now()
      while (found.size < args.expect && performance.now() < deadline && !signal.aborted) {
        for await (const record of registry.discover(args.name, { timeout: Math.max(100, deadline - performance.now()), signal })) {
          if (found.has(record.peerId)) continue
          found.set(record.peerId, record)
          console.log(`client ${me}: found ${short(record.peerId)} after ${ms(started)} (metadata ${JSON.stringify(record.metadata)}, expires in ${Math.round((record.expiresAt - Date.now()) / 1000)} s) at ${record.multiaddrs.join(' ')}`)
        }
        if (found.size < args.expect) await new Promise(resolve => setTimeout(resolve, 50))
      }
      signal.throwIfAborted()
      console.log(`client ${me}: discovered ${found.size} provider(s) of "${args.name}" in ${ms(started)}`)
      let failed = 0
      if (args.call) {
        // Every provider is called, whatever happened to the one before; each outcome is printed.
        for (const record of found.values()) {
          const t = performance.now()
          try {
            const answer = Buffer.from(await registry.request(record, HELLO_PROTOCOL, me, { signal: AbortSignal.any([signal, AbortSignal.timeout(args.timeout)]) })).toString()
            console.log(`client ${me}: called ${short(record.peerId)} in ${ms(t)}: "${answer}"`)
          } catch (error) {
            signal.throwIfAborted()
            failed++
            const code = (error as { code?: string }).code
            console.log(`client ${me}: calling ${short(record.peerId)} failed after ${ms(t)}: ${(error as Error).message}${code !== undefined ? ` (${code})` : ''}`)
          }
        }
        console.log(`client ${me}: ${found.size - failed} of ${found.size} provider(s) answered`)
      }
      if (found.size < args.expect) console.log(`client ${me}: expected ${args.expect}, found ${found.size}`)
      return found.size < args.expect || failed > 0 ? 1 : 0
    })
  }
}

/** The discovery commands, by name. */
export const discoveryCommands: Record<'registry' | 'provide' | 'discover', Command> = {
  registry: registryCommand,
  provide: provideCommand,
  discover: discoverCommand
}

/** Spawns this CLI with `args` (added to `children` at once); resolves with the child once a line matches `ready`. */
async function child (children: ChildProcess[], args: string[], prefix: string, ready: RegExp): Promise<{ process: ChildProcess, match: RegExpMatchArray }> {
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url))
  const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(proc)
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

/**
 * The demo's discovery scene: a registry, three providers and a client, each its own process;
 * `signal` (Ctrl-C) stops them. Without discovery's packages it prints the install line instead.
 */
export async function discoveryScene (signal: AbortSignal): Promise<void> {
  try {
    await import('./entry.js')
  } catch (error) {
    console.log(`\n(the discovery scene is skipped: ${(error as Error).message})`)
    return
  }
  console.log('\ndiscovery: a registry, three providers and a client, each a separate process on loopback (node-msquic/discovery on kad-dht)')
  const children: ChildProcess[] = []
  const started = performance.now()
  // Each wait ends on Ctrl-C too; the children are stopped below either way.
  const interruptible = async <T>(promise: Promise<T>): Promise<T> => await Promise.race([promise, until(signal).then(() => { throw signal.reason })])
  const spawned = async (args: string[], prefix: string, ready: RegExp): ReturnType<typeof child> => await interruptible(child(children, args, prefix, ready))
  try {
    const registry = await spawned(['registry'], 'registry', /^bootstrap: (\S+)/)
    const bootstrap = registry.match[1]
    await Promise.all(['eu', 'us', 'ap'].map(async region => await spawned(['provide', 'echo', '--bootstrap', bootstrap, '--metadata', JSON.stringify({ region })], `provider ${region}`, /advertised/)))
    const client = await spawned(['discover', 'echo', '--bootstrap', bootstrap, '--expect', '3', '--call'], 'client', /discovered|expected/)
    const code = await interruptible(new Promise<number | null>(resolve => client.process.exitCode !== null ? resolve(client.process.exitCode) : client.process.once('exit', resolve)))
    if (code !== 0) throw new Error(`the discovery client exited with ${code}`)
    console.log(`discovery scene done in ${ms(started)}`)
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
    await Promise.all(children.map(async c => { if (c.exitCode === null && c.signalCode === null) await new Promise(resolve => c.once('exit', resolve)) }))
  }
}
