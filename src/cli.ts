#!/usr/bin/env node
/**
 * The `node-msquic` command.
 *   node-msquic                  a self-contained loopback demo
 *   node-msquic serve [options]  an echo server
 *   node-msquic connect [options] sends a message (or stdin) on a stream and prints the echo
 *   node-msquic libp2p           two js-libp2p nodes on node-msquic/libp2p: connect, ping, echo
 *   node-msquic registry | provide | discover   service discovery (node-msquic/discovery)
 * Every command checks all of its arguments before it starts anything: an unknown option, a
 * missing or bad value is a usage error (exit code 2). Ctrl-C (SIGINT) or SIGTERM stops it;
 * a second one exits at once. The process exits once the command has stopped what it started.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { connect, createSelfSignedCertificate, listen, type QuicConnection, type QuicStream } from './index.js'
import { discoveryCommands, discoveryScene, wholeNumber, type CliValues, type Command } from './discovery/cli.js'
import { invalidArgValue } from './errors.js'

async function readStream (stream: QuicStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Echoes every stream of `connection` back to its sender. */
async function echo (connection: QuicConnection): Promise<void> {
  for await (const stream of connection) {
    stream.on('error', () => {})
    if (stream.unidirectional) continue
    void readStream(stream).then(data => stream.end(data), () => {})
  }
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)

async function demo (): Promise<void> {
  const { cert, key } = await createSelfSignedCertificate({ hosts: ['localhost', '127.0.0.1'] })
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'demo', cert, key })
  const { port } = listener.address()
  console.log(`server: listening on 127.0.0.1:${port} (QUIC, ALPN "demo", self-signed certificate)`)
  const serverSide = listener.accept()

  let started = performance.now()
  const client = await connect({ host: '127.0.0.1', port, alpn: 'demo', ca: cert })
  console.log(`client: connected in ${(performance.now() - started).toFixed(1)} ms, certificate verified, ALPN "${client.alpnProtocol}"`)
  const server = await serverSide
  console.log(`server: accepted a connection from ${server.remoteAddress?.address}:${server.remoteAddress?.port}`)
  // The request path: each request is one stream, collected natively and answered with its FIN.
  server.serveRequests(body => body)

  // Client to server: many small requests (a new stream each), 100 at a time.
  const count = 10_000
  let next = 0
  started = performance.now()
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (next < count) {
      const message = `request ${next++}`
      if ((await client.request(message)).toString() !== message) throw new Error('echo mismatch')
    }
  }))
  let seconds = (performance.now() - started) / 1000
  console.log(`client -> server: ${count.toLocaleString('en-US')} echo requests (connection.request() / serveRequests()), 100 in flight, in ${seconds.toFixed(2)} s (${Math.round(count / seconds).toLocaleString('en-US')} requests/s)`)

  // Server to client: the server opens a stream and sends 64 MiB.
  const size = 64 * 2 ** 20
  started = performance.now()
  const inbound = client.acceptStream()
  const outbound = await server.openStream({ unidirectional: true })
  const chunk = Buffer.alloc(256 * 1024, 1)
  void (async () => {
    for (let sent = 0; sent < size; sent += chunk.length) {
      if (!outbound.write(chunk)) await new Promise(resolve => outbound.once('drain', resolve))
    }
    outbound.end()
  })()
  const received = await readStream(await inbound)
  seconds = (performance.now() - started) / 1000
  if (received.length !== size) throw new Error(`received ${received.length} bytes, expected ${size}`)
  console.log(`server -> client: ${mib(size)} MiB on one stream in ${seconds.toFixed(2)} s (${(size / 2 ** 20 / seconds).toFixed(0)} MiB/s)`)

  const closed = await client.close()
  await listener.close()
  console.log(`client: closed (${closed.by}, code ${closed.code}); demo done`)
}

/** A UDP port from the command line: `min` (0: any free one) to 65535. */
function port (flag: string, value: unknown, min: number): number {
  const number = wholeNumber(flag, value)
  if (number < min || number > 65535) throw invalidArgValue(flag, `must be a port from ${min} to 65535`, number, true)
  return number
}

const text = (value: CliValues[string]): string | undefined => typeof value === 'string' ? value : undefined

interface ServeArgs { host: string, port: number, alpn: string, cert?: string, key?: string, caOut?: string }

const serveCommand: Command<ServeArgs> = {
  usage: `node-msquic serve [--host 127.0.0.1] [--port 4433] [--alpn echo] [--cert F --key F] [--ca-out F]
                                   echo every stream back; without --cert a self-signed certificate
                                   is made (--ca-out writes it, for the client's --ca)`,
  options: { host: { type: 'string' }, port: { type: 'string' }, alpn: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' }, 'ca-out': { type: 'string' } },
  parse: (values, positionals) => {
    if (positionals.length > 0) throw new Error(`serve takes no arguments besides its options; got ${JSON.stringify(positionals[0])}`)
    if ((values.cert === undefined) !== (values.key === undefined)) throw new Error('--cert and --key go together')
    return { host: text(values.host) ?? '127.0.0.1', port: values.port === undefined ? 4433 : port('--port', values.port, 0), alpn: text(values.alpn) ?? 'echo', cert: text(values.cert), key: text(values.key), caOut: text(values['ca-out']) }
  },
  run: async (args, signal) => {
    let cert: string, key: string
    if (args.cert !== undefined && args.key !== undefined) {
      cert = readFileSync(args.cert, 'utf8')
      key = readFileSync(args.key, 'utf8')
    } else {
      ({ cert, key } = await createSelfSignedCertificate())
      if (args.caOut !== undefined) writeFileSync(args.caOut, cert)
    }
    const listener = await listen({ host: args.host, port: args.port, alpn: args.alpn, cert, key })
    const address = listener.address()
    console.log(`echo server listening on ${address.address}:${address.port} (ALPN "${args.alpn}")`)
    signal.addEventListener('abort', () => { void listener.close() }, { once: true })
    for await (const connection of listener) {
      console.log(`connection from ${connection.remoteAddress?.address}:${connection.remoteAddress?.port}`)
      void echo(connection)
    }
    return 0
  }
}

interface ConnectArgs { host: string, port: number, alpn: string, servername?: string, ca?: string, insecure: boolean, message?: string }

const connectCommand: Command<ConnectArgs> = {
  usage: `node-msquic connect --port P [--host 127.0.0.1] [--alpn echo] [--ca F | --insecure] [--servername N]
                      [--message TEXT]
                                   send TEXT (default: standard input) and print the echo`,
  options: { host: { type: 'string' }, port: { type: 'string' }, alpn: { type: 'string' }, ca: { type: 'string' }, insecure: { type: 'boolean' }, servername: { type: 'string' }, message: { type: 'string' } },
  parse: (values, positionals) => {
    if (positionals.length > 0) throw new Error(`connect takes no arguments besides its options; got ${JSON.stringify(positionals[0])}`)
    if (values.port === undefined) throw new Error('connect needs --port P')
    return { host: text(values.host) ?? '127.0.0.1', port: port('--port', values.port, 1), alpn: text(values.alpn) ?? 'echo', servername: text(values.servername), ca: text(values.ca), insecure: values.insecure === true, message: text(values.message) }
  },
  run: async (args, signal) => {
    const connection = await connect({
      host: args.host,
      port: args.port,
      alpn: args.alpn,
      servername: args.servername,
      ca: args.ca !== undefined ? readFileSync(args.ca, 'utf8') : undefined,
      rejectUnauthorized: !args.insecure,
      signal
    })
    const message = args.message !== undefined ? Buffer.from(args.message) : readFileSync(0)
    const stream = await connection.openStream()
    stream.end(message)
    process.stdout.write(await readStream(stream))
    if (args.message !== undefined) process.stdout.write('\n')
    await connection.close()
    return 0
  }
}

/** Exits at once on Ctrl-C: for the demos, which hold nothing a peer waits for. */
function exitOnInterrupt (signal: AbortSignal): () => void {
  const exit = (): never => process.exit(130)
  signal.addEventListener('abort', exit, { once: true })
  return () => signal.removeEventListener('abort', exit)
}

const demoCommand: Command<{ discovery: boolean }> = {
  usage: `node-msquic [--no-discovery]
                                   run a loopback demo (server and client in this process), then the
                                   discovery scene: a registry, 3 providers and a client as processes`,
  options: { 'no-discovery': { type: 'boolean' } },
  parse: (values, positionals) => {
    if (positionals.length > 0) throw new Error(`unknown command ${JSON.stringify(positionals[0])}`)
    return { discovery: values['no-discovery'] !== true }
  },
  run: async (args, signal) => {
    const done = exitOnInterrupt(signal)
    await demo()
    done()
    if (args.discovery) await discoveryScene(signal)
    return 0
  }
}

const libp2pCommand: Command<undefined> = {
  usage: `node-msquic libp2p
                                   two js-libp2p nodes on this transport connect over QUIC, identify,
                                   ping and echo (needs libp2p, @libp2p/identify and @libp2p/ping)`,
  options: {},
  parse: (values, positionals) => {
    if (positionals.length > 0) throw new Error(`libp2p takes no arguments; got ${JSON.stringify(positionals[0])}`)
    return undefined
  },
  run: async (args, signal) => {
    exitOnInterrupt(signal)
    await (await import('./libp2p/demo.js')).libp2pDemo()
    return 0
  }
}

const commands: Record<string, Command> = { serve: serveCommand, connect: connectCommand, libp2p: libp2pCommand, ...discoveryCommands }

const usage = ['Usage:', ...[demoCommand, ...Object.values(commands)].map(c => `  ${c.usage}`),
  '  (the discovery commands need libp2p, @libp2p/kad-dht, @libp2p/identify and @libp2p/ping installed;',
  '   ADDR is a multiaddr such as /ip4/0.0.0.0/udp/4001/quic-v1, and --bootstrap the one a registry prints)',
  '  Exit codes: 0 done (or stopped with Ctrl-C), 1 failed, 2 a usage error, 130 interrupted.'].join('\n')

/** Prints a usage error (the command's usage line) and returns its exit code, 2. */
function usageError (message: string, command?: Command): number {
  console.error(`node-msquic: ${message}`)
  console.error(command === undefined ? usage : `Usage: ${command.usage}\n(node-msquic --help lists every command)`)
  return 2
}

/** parseArgs' refusal, said shortly. */
function parseError (error: Error & { code?: string }): string {
  const option = /option '(-[^' ]+)/i.exec(error.message)?.[1]
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option ?? error.message}`
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return option !== undefined ? `${option} needs a value` : error.message
  return error.message
}

async function main (argv: string[]): Promise<number> {
  const name = argv[0] === undefined || argv[0].startsWith('-') ? undefined : argv[0]
  const command: Command | undefined = name === undefined ? demoCommand : commands[name]
  if (command === undefined) return usageError(`unknown command ${JSON.stringify(name)}`)
  let args: unknown
  try {
    const { values, positionals } = parseArgs({ args: name === undefined ? argv : argv.slice(1), options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })
    if (values.help === true) {
      console.log(command === demoCommand ? usage : `Usage: ${command.usage}`)
      return 0
    }
    args = command.parse(values, positionals)
  } catch (error) {
    return usageError(parseError(error as Error), command)
  }
  // The first Ctrl-C (or SIGTERM) asks the command to stop; another one a second later exits at
  // once. (npx forwards the terminal's SIGINT to the process group that already got it: one
  // Ctrl-C arrives twice.)
  const interrupt = new AbortController()
  let interrupted = 0
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) {
      if (performance.now() - interrupted > 1_000) process.exit(130)
      return
    }
    interrupted = performance.now()
    interrupt.abort(new Error(`interrupted (${signal})`))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    return await command.run(args, interrupt.signal)
  } catch (error) {
    if (interrupt.signal.aborted) {
      console.error('node-msquic: interrupted')
      return 130
    }
    const code = (error as { code?: unknown })?.code
    console.error(`node-msquic: ${error instanceof Error ? error.message : String(error)}${code !== undefined ? ` (${String(code)})` : ''}`)
    return 1
  }
}

// Everything the command started is stopped when main() resolves: exit then, not when the last
// timer of a dependency runs out (stdout and stderr are synchronous on Linux, nothing is lost).
main(process.argv.slice(2)).then(code => process.exit(code), error => {
  console.error(error)
  process.exit(1)
})
