#!/usr/bin/env node
/**
 * The `node-msquic` command.
 *   node-msquic                  a self-contained loopback demo
 *   node-msquic serve [options]  an echo server
 *   node-msquic connect [options] sends a message (or stdin) on a stream and prints the echo
 *   node-msquic libp2p           two js-libp2p nodes on node-msquic/libp2p: connect, ping, echo
 *   node-msquic registry | provide | discover   service discovery (node-msquic/discovery)
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { connect, createSelfSignedCertificate, listen, type QuicConnection, type QuicStream } from './index.js'

const usage = `Usage:
  node-msquic                      run a loopback demo (server and client in this process)
  node-msquic serve [--host 127.0.0.1] [--port 4433] [--alpn echo] [--cert F --key F] [--ca-out F]
                                   echo every stream back; without --cert a self-signed certificate
                                   is made (--ca-out writes it, for the client's --ca)
  node-msquic connect --port P [--host 127.0.0.1] [--alpn echo] [--ca F | --insecure] [--servername N]
                      [--message TEXT]
                                   send TEXT (default: standard input) and print the echo
  node-msquic libp2p               two js-libp2p nodes on this transport connect over QUIC, identify,
                                   ping and echo (needs libp2p, @libp2p/identify and @libp2p/ping)
  node-msquic registry [--listen ADDR]
                                   a discovery registry (a kad-dht bootstrap node); prints its address
  node-msquic provide NAME --bootstrap ADDR [--metadata JSON] [--ttl MS]
                                   advertise NAME and answer hello calls until stopped
  node-msquic discover NAME --bootstrap ADDR [--expect N] [--timeout MS] [--call]
                                   find NAME's providers (N of them, default 1) and call each
                                   (the discovery commands also need @libp2p/kad-dht)`

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

type Values = Record<string, string | boolean | string[] | undefined>

async function serve (values: Values): Promise<void> {
  let cert: string, key: string
  if (typeof values.cert === 'string' && typeof values.key === 'string') {
    cert = readFileSync(values.cert, 'utf8')
    key = readFileSync(values.key, 'utf8')
  } else {
    ({ cert, key } = await createSelfSignedCertificate())
    if (typeof values['ca-out'] === 'string') writeFileSync(values['ca-out'], cert)
  }
  const listener = await listen({ host: String(values.host ?? '127.0.0.1'), port: Number(values.port ?? 4433), alpn: String(values.alpn ?? 'echo'), cert, key })
  const address = listener.address()
  console.log(`echo server listening on ${address.address}:${address.port} (ALPN "${String(values.alpn ?? 'echo')}")`)
  const stop = (): void => { void listener.close() }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  for await (const connection of listener) {
    console.log(`connection from ${connection.remoteAddress?.address}:${connection.remoteAddress?.port}`)
    void echo(connection)
  }
}

async function client (values: Values): Promise<void> {
  if (values.port === undefined) throw new Error('connect needs --port')
  const connection = await connect({
    host: String(values.host ?? '127.0.0.1'),
    port: Number(values.port),
    alpn: String(values.alpn ?? 'echo'),
    servername: typeof values.servername === 'string' ? values.servername : undefined,
    ca: typeof values.ca === 'string' ? readFileSync(values.ca, 'utf8') : undefined,
    rejectUnauthorized: values.insecure !== true
  })
  const message = typeof values.message === 'string' ? Buffer.from(values.message) : readFileSync(0)
  const stream = await connection.openStream()
  stream.end(message)
  process.stdout.write(await readStream(stream))
  if (typeof values.message === 'string') process.stdout.write('\n')
  await connection.close()
}

async function main (): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      alpn: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
      'ca-out': { type: 'string' },
      servername: { type: 'string' },
      insecure: { type: 'boolean' },
      message: { type: 'string' },
      listen: { type: 'string', multiple: true },
      bootstrap: { type: 'string', multiple: true },
      metadata: { type: 'string' },
      ttl: { type: 'string' },
      timeout: { type: 'string' },
      expect: { type: 'string' },
      call: { type: 'boolean' },
      'no-discovery': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) {
    console.log(usage)
    return
  }
  switch (positionals[0]) {
    case undefined: {
      await demo()
      // The discovery scene needs js-libp2p and kad-dht; without them the QUIC demo stands alone.
      if (values['no-discovery'] !== true) {
        const scene = await import('./discovery/cli.js').catch(() => undefined)
        if (scene === undefined) console.log('(the discovery scene needs libp2p, @libp2p/kad-dht, @libp2p/identify and @libp2p/ping)')
        else await scene.discoveryScene()
      }
      return
    }
    case 'registry': return await (await import('./discovery/cli.js')).registryCommand(values)
    case 'provide': return await (await import('./discovery/cli.js')).provideCommand(positionals[1], values)
    case 'discover': return await (await import('./discovery/cli.js')).discoverCommand(positionals[1], values)
    case 'serve': return await serve(values)
    case 'connect': return await client(values)
    case 'libp2p': return await (await import('./libp2p/demo.js')).libp2pDemo()
    default: throw new Error(`unknown command "${positionals[0]}"\n${usage}`)
  }
}

main().catch(error => {
  console.error(`node-msquic: ${error instanceof Error ? error.message : String(error)}${error?.code !== undefined ? ` (${String(error.code)})` : ''}`)
  process.exitCode = 1
})
