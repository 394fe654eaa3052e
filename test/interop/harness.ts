/**
 * Interop harness: certificates (openssl), the peers of test/interop/peers as child processes, and
 * node-msquic's own side of the peer protocol (test/interop/peers/README.md) as server and client.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'vitest'
import { run } from '../child.js'
import { childEnv, findPeer, inCi } from '../../scripts/build-interop-peers.mjs'
import { connect, listen, type ConnectOptions, type ListenOptions, type QuicConnection, type QuicListener, type QuicStream } from '../../src/index.js'

export type PeerName = 'quicgo' | 'quinn' | 'aioquic'
export const STACKS: Record<PeerName, string> = { quicgo: 'quic-go', quinn: 'quinn', aioquic: 'aioquic' }

/**
 * The launcher of an interop peer (scripts/build-interop-peers.mjs), for a suite's (async) describe
 * callback. `npm test` builds every peer before the tests start; where one is not built (its toolchain
 * is missing, or vitest was started directly), this registers one skipped test that says why and
 * returns undefined. In CI it registers a failing test instead: .ci/run installs every toolchain, so
 * a missing peer there is a fault.
 */
export async function requirePeer (name: string): Promise<string | undefined> {
  const peer = await findPeer(name)
  if (peer.built) return peer.path
  const why = peer.missing ?? 'it is not built'
  if (inCi) {
    test(`the ${name} peer is built`, () => { throw new Error(`the ${name} peer is missing: ${why}; .ci/run installs every toolchain, and npm test builds every peer before the tests`) })
  } else {
    test.skip(`the ${name} peer is missing: ${why}; npm test builds it before the tests start`, () => {})
  }
  return undefined
}

// ---- certificates ----

export interface Credentials { cert: string, key: string, certFile: string, keyFile: string }
export interface CertificateSet {
  dir: string
  /** The CA that signed both leaves, and one that signed nothing. */
  ca: string
  caFile: string
  otherCa: string
  otherCaFile: string
  /** Leaves for localhost, 127.0.0.1 and ::1 (CA:FALSE, serverAuth and clientAuth). */
  ecdsa: Credentials
  rsa: Credentials
}

async function openssl (dir: string, args: string[]): Promise<void> {
  const result = await run('openssl', args, { cwd: dir, env: childEnv() })
  if (result.status !== 0) throw new Error(`openssl ${args[0] ?? ''} failed: ${result.stderr}`)
}

/** A CA, an ECDSA and an RSA leaf it signed, and an unrelated CA; files in a fresh directory. */
export async function makeCertificates (): Promise<CertificateSet> {
  const dir = mkdtempSync(join(tmpdir(), 'nmq-interop-'))
  const ca = async (name: string): Promise<void> => openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  await ca('interop-ca')
  await ca('other-ca')
  writeFileSync(join(dir, 'leaf.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth,clientAuth',
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'
  ].join('\n') + '\n')
  const leaf = async (name: string, keyArgs: string[]): Promise<Credentials> => {
    await openssl(dir, ['req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost'])
    await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'interop-ca.pem', '-CAkey', 'interop-ca.key', '-set_serial',
      String(Math.floor(Math.random() * 2 ** 48)), '-days', '2', '-sha256', '-extfile', 'leaf.ext', '-out', `${name}.pem`])
    const certFile = join(dir, `${name}.pem`)
    const keyFile = join(dir, `${name}.key`)
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile }
  }
  return {
    dir,
    ca: readFileSync(join(dir, 'interop-ca.pem'), 'utf8'),
    caFile: join(dir, 'interop-ca.pem'),
    otherCa: readFileSync(join(dir, 'other-ca.pem'), 'utf8'),
    otherCaFile: join(dir, 'other-ca.pem'),
    ecdsa: await leaf('ecdsa', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']),
    rsa: await leaf('rsa', ['-newkey', 'rsa:2048'])
  }
}

/** Writes PEM text to a file in `dir` and returns its path. */
export function pemFile (dir: string, name: string, pem: string): string {
  const path = join(dir, name)
  writeFileSync(path, pem)
  return path
}

// ---- the pattern ----

/** byte i is (i + seed) % 251 */
export function pattern (n: number, seed: number): Buffer {
  const cycle = Buffer.alloc(251)
  for (let i = 0; i < 251; i++) cycle[i] = (i + seed) % 251
  const out = Buffer.allocUnsafe(n)
  for (let at = 0; at < n; at += 251) cycle.copy(out, at, 0, Math.min(251, n - at))
  return out
}

// ---- peers as child processes ----

export interface PeerRecord { event: string, ok?: boolean, [key: string]: unknown }

/** A peer server: its port, the connection records it printed, and stop(). */
export class PeerServer {
  readonly records: PeerRecord[] = []
  port = 0
  address = ''
  stderr = ''
  readonly #child: ChildProcess
  #waiters: Array<() => void> = []

  constructor (binary: string, args: string[]) {
    this.#child = spawn(binary, ['server', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() })
    this.#child.stderr!.on('data', chunk => { this.stderr = (this.stderr + String(chunk)).slice(-4000) })
    createInterface({ input: this.#child.stdout! }).on('line', line => {
      try {
        this.records.push(JSON.parse(line) as PeerRecord)
      } catch {
        this.stderr += `\n(stdout) ${line}`
      }
      for (const wake of this.#waiters.splice(0)) wake()
    })
    this.#child.on('exit', () => { for (const wake of this.#waiters.splice(0)) wake() })
  }

  static async start (binary: string, args: string[]): Promise<PeerServer> {
    const server = new PeerServer(binary, args)
    const listening = await server.waitFor(r => r.event === 'listening', 20_000)
    server.port = listening.port as number
    server.address = listening.address as string
    return server
  }

  /** The first record (from `from` on) that matches; waits for it. */
  async waitFor (match: (record: PeerRecord) => boolean, timeout = 10_000, from = 0): Promise<PeerRecord> {
    const deadline = Date.now() + timeout
    for (;;) {
      const found = this.records.slice(from).find(match)
      if (found !== undefined) return found
      if (this.#child.exitCode !== null) throw new Error(`the peer server exited (${this.#child.exitCode}): ${this.stderr}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for a record from the peer server; it printed ${JSON.stringify(this.records.slice(from))} ${this.stderr}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, 200)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  async stop (): Promise<void> {
    if (this.#child.exitCode !== null) return
    const exited = new Promise(resolve => this.#child.once('exit', resolve))
    this.#child.stdin!.end()
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }
}

/** Runs a peer client to its end; returns its result record (and its exit code and stderr). */
export async function runPeerClient (binary: string, args: string[], timeout = 50_000): Promise<PeerRecord & { exitCode: number | null, stderr: string }> {
  const child = spawn(binary, ['client', '--timeout', `${Math.floor(timeout / 1000) - 5}s`, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', chunk => { stdout += String(chunk) })
  child.stderr.on('data', chunk => { stderr = (stderr + String(chunk)).slice(-4000) })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
  const exitCode = await new Promise<number | null>(resolve => child.on('close', code => resolve(code)))
  clearTimeout(timer)
  const lines = stdout.split('\n').filter(line => line.trim() !== '')
  let result: PeerRecord = { event: 'result', ok: false, error: `no result (exit ${exitCode}): ${stdout} ${stderr}` }
  for (const line of lines) {
    try {
      const record = JSON.parse(line) as PeerRecord
      if (record.event === 'result') result = record
    } catch {}
  }
  return { ...result, exitCode, stderr }
}

// ---- node-msquic's side: a server ----

export interface NodeServerOptions extends Partial<ListenOptions> {
  /** Milliseconds before a connection's streams are accepted (they queue meanwhile). */
  acceptDelay?: number
}

export interface NodeConnectionRecord {
  connection: QuicConnection
  alpn?: string
  serverName?: string
  streamResets: number[]
  /** Whether any stream brought 0-RTT data (stream.earlyData). */
  earlyData: boolean
  closed?: { by: string, code: number }
}

/** node-msquic serving the peer protocol on every connection it accepts. */
export class NodeServer {
  readonly connections: NodeConnectionRecord[] = []
  readonly listener: QuicListener
  readonly #tasks = new Set<Promise<void>>()
  readonly #acceptDelay: number

  private constructor (listener: QuicListener, acceptDelay: number) {
    this.listener = listener
    this.#acceptDelay = acceptDelay
    this.#track(this.#acceptLoop())
  }

  static async start (options: NodeServerOptions): Promise<NodeServer> {
    const { acceptDelay = 0, ...listenOptions } = options
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'interop', ...listenOptions } as ListenOptions)
    return new NodeServer(listener, acceptDelay)
  }

  get port (): number {
    return this.listener.address().port
  }

  #track (task: Promise<void>): void {
    const tracked = task.catch(() => {}).finally(() => this.#tasks.delete(tracked))
    this.#tasks.add(tracked)
  }

  async #acceptLoop (): Promise<void> {
    for await (const connection of this.listener) {
      const record: NodeConnectionRecord = {
        connection,
        alpn: connection.alpnProtocol,
        serverName: (connection as unknown as { serverName?: string }).serverName,
        streamResets: [],
        earlyData: false
      }
      this.connections.push(record)
      // Codes as numbers here: the ones the tests use are small.
      void connection.closed.then(info => { record.closed = { by: info.by, code: Number(info.code) } })
      connection.on('datagram', data => {
        try { connection.sendDatagram(data) } catch {}
      })
      this.#track(this.#serveConnection(connection, record))
    }
  }

  async #serveConnection (connection: QuicConnection, record: NodeConnectionRecord): Promise<void> {
    if (this.#acceptDelay > 0) await sleep(this.#acceptDelay)
    // autoDestroy: false, as the app may ask: 'report-reset' answers on a stream whose read side
    // the peer reset, which Node's default contract (a failed direction ends the stream) would not let it.
    for (;;) {
      const stream = await connection.acceptStream({ autoDestroy: false }).catch(() => undefined)
      if (stream === undefined) return
      this.#track(serveStream(connection, stream, record))
    }
  }

  /** The first connection record that matches; waits for it. */
  async waitFor (match: (record: NodeConnectionRecord) => boolean, timeout = 10_000): Promise<NodeConnectionRecord> {
    const deadline = Date.now() + timeout
    for (;;) {
      const found = this.connections.find(match)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error('timed out waiting for a connection on the node-msquic server')
      await sleep(20)
    }
  }

  async stop (): Promise<void> {
    for (const { connection } of this.connections) await connection.close().catch(() => {})
    await this.listener.close()
  }
}

/** Reads up to the first '\n': the line, and the bytes after it (the stream stays readable). */
export async function readLine (stream: Readable): Promise<{ line: string, rest: Buffer }> {
  let buffer = Buffer.alloc(0)
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
    buffer = Buffer.concat([buffer, chunk as Buffer])
    const at = buffer.indexOf(10)
    if (at >= 0) return { line: buffer.subarray(0, at).toString(), rest: buffer.subarray(at + 1) }
  }
  return { line: buffer.toString(), rest: Buffer.alloc(0) }
}

export async function readAll (stream: Readable, initial: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  const chunks: Buffer[] = [initial]
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

async function serveStream (connection: QuicConnection, stream: QuicStream, record: NodeConnectionRecord): Promise<void> {
  const { line, rest } = await readLine(stream)
  if (stream.earlyData) record.earlyData = true
  const [verb, arg] = line.split(' ')
  const n = Number(arg ?? 0)
  if (stream.unidirectional) {
    if (verb !== 'echo') { stream.destroy(); return }
    const data = await readAll(stream, rest)
    const out = await connection.openStream({ unidirectional: true })
    out.end(data)
    return
  }
  switch (verb) {
    case 'echo':
      stream.write(rest)
      stream.pipe(stream)
      break
    case 'send':
      stream.end(pattern(n, 0))
      await readAll(stream)
      break
    case 'sink': {
      const got = await readAll(stream, rest)
      stream.end(`${got.equals(pattern(n, 0)) ? 'ok' : 'bad'} ${got.length}\n`)
      break
    }
    case 'reset':
      stream.reset(n)
      await readAll(stream).catch(() => {})
      break
    case 'report-reset':
      stream.write('ready\n')
      try {
        await readAll(stream)
        stream.end('no-reset\n')
      } catch (error) {
        const code = (error as { errorCode?: number | bigint }).errorCode ?? -1
        record.streamResets.push(Number(code))
        stream.end(`reset ${code}\n`)
      }
      break
    case 'close':
      await connection.close({ code: n })
      break
    default:
      stream.reset(2)
  }
}

// ---- node-msquic's side: a client ----

export interface ScenarioOptions { streams: number, size: number, code: number }
export interface ScenarioResult { alpn?: string, [key: string]: unknown }

export async function nodeConnect (options: Partial<ConnectOptions> & { port: number }): Promise<QuicConnection> {
  return connect({ host: '127.0.0.1', alpn: 'interop', ...options } as ConnectOptions)
}

async function exchange (connection: QuicConnection, request: Buffer | string): Promise<Buffer> {
  const stream = await connection.openStream()
  stream.end(request)
  return readAll(stream)
}

/** node-msquic as the client of one scenario; throws on any mismatch. */
export async function nodeScenario (connection: QuicConnection, scenario: string, o: ScenarioOptions): Promise<ScenarioResult> {
  const result: ScenarioResult = { alpn: connection.alpnProtocol }
  switch (scenario) {
    case 'handshake':
      return result
    case 'echo': {
      await Promise.all(Array.from({ length: o.streams }, async (_, i) => {
        const body = pattern(o.size + i * 7, i)
        const got = await exchange(connection, Buffer.concat([Buffer.from('echo\n'), body]))
        if (!got.equals(body)) throw new Error(`stream ${i}: ${got.length} bytes back of ${body.length}, or different`)
      }))
      return { ...result, streams: o.streams }
    }
    case 'download': {
      const got = await exchange(connection, `send ${o.size}\n`)
      if (!got.equals(pattern(o.size, 0))) throw new Error(`received ${got.length} bytes of ${o.size}, or different`)
      return { ...result, bytes: got.length }
    }
    case 'upload': {
      const got = await exchange(connection, Buffer.concat([Buffer.from(`sink ${o.size}\n`), pattern(o.size, 0)]))
      if (got.toString() !== `ok ${o.size}\n`) throw new Error(`the server answered ${JSON.stringify(got.toString())}`)
      return { ...result, bytes: o.size }
    }
    case 'uni': {
      const body = pattern(o.size, 3)
      const out = await connection.openStream({ unidirectional: true })
      out.end(Buffer.concat([Buffer.from('echo\n'), body]))
      const back = await connection.acceptStream({ unidirectional: true })
      const got = await readAll(back)
      if (!back.unidirectional || !got.equals(body)) throw new Error(`uni echo: ${got.length} bytes of ${body.length}, or different`)
      return { ...result, bytes: got.length }
    }
    case 'reset-from-server': {
      const error = await exchange(connection, `reset ${o.code}\n`).then(() => undefined, (e: unknown) => e as { code?: string, errorCode?: number | bigint })
      if (error?.code !== 'ERR_QUIC_STREAM_RESET' || Number(error.errorCode) !== o.code) throw new Error(`expected a reset with ${o.code}, got ${String(error?.code)} ${String(error?.errorCode)}`)
      return { ...result, code: Number(error.errorCode) }
    }
    case 'reset-from-client': {
      const stream = await connection.openStream()
      stream.write('report-reset\n')
      const ready = await readLine(stream)
      if (ready.line !== 'ready') throw new Error(`expected ready, got ${JSON.stringify(ready.line)}`)
      stream.reset(o.code)
      const answer = await readLine(stream)
      if (answer.line !== `reset ${o.code}`) throw new Error(`the server saw ${JSON.stringify(answer.line)}`)
      return { ...result, code: o.code }
    }
    case 'close-from-server': {
      const stream = await connection.openStream()
      stream.on('error', () => {})
      stream.end(`close ${o.code}\n`)
      const info = await connection.closed
      if (info.by !== 'peer' || Number(info.code) !== o.code) throw new Error(`expected the peer's close with ${o.code}, got ${info.by} ${String(info.code)}`)
      return { ...result, code: Number(info.code) }
    }
    case 'close-from-client':
      await exchange(connection, 'echo\nx')
      await connection.close({ code: o.code })
      return { ...result, code: o.code }
    case 'datagrams': {
      const deadline = Date.now() + 2000
      while (connection.maxDatagramSize === 0 && Date.now() < deadline) await sleep(10)
      if (connection.maxDatagramSize === 0) throw new Error('the server does not accept datagrams')
      const sent = new Set<string>()
      let received = 0
      let unexpected: string | undefined
      const onDatagram = (data: Buffer): void => {
        if (sent.has(data.toString())) received++
        else unexpected = data.toString()
      }
      connection.on('datagram', onDatagram)
      for (let i = 0; i < 20; i++) {
        const d = `datagram ${i} ${'x'.repeat(100)}`
        sent.add(d)
        connection.sendDatagram(Buffer.from(d))
        await sleep(2)
      }
      const until = Date.now() + 2000
      while (received < 20 && Date.now() < until) await sleep(10)
      connection.off('datagram', onDatagram)
      if (unexpected !== undefined) throw new Error(`unexpected datagram ${JSON.stringify(unexpected)}`)
      if (received === 0) throw new Error('no datagram came back')
      return { ...result, sent: 20, received }
    }
  }
  throw new Error(`unknown scenario ${scenario}`)
}

// ---- results, for the README's table ----

export type Direction = 'node→peer' | 'peer→node' | 'peer→peer'
export interface InteropResult { stack: string, direction: Direction, scenario: string, status: 'pass' | 'fail' | 'known-defect', ms: number, error?: string }

export class Results {
  readonly rows: InteropResult[] = []
  constructor (readonly stack: string) {}

  add (row: InteropResult): void {
    this.rows.push(row)
  }

  /** build/interop/<stack>.json, read by scripts/interop-table.mjs. */
  write (): void {
    const dir = join(import.meta.dirname, '..', '..', 'build', 'interop')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, `${this.stack}.json`), JSON.stringify({ stack: this.stack, finished: new Date().toISOString(), results: this.rows }, null, 2) + '\n')
  }
}
