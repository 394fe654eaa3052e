// An echo server on one thread, or spread over two worker threads, driven by a client in a
// separate process:  node bench/multicore.mjs <single|workers> <streams>
// Prints one JSON line (impl node-msquic, workload echo-server).
import { spawn } from 'node:child_process'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { createSelfSignedCertificate, distributeConnections, listen } from '../dist/index.js'
import { serveEcho } from './lib.mjs'

const [mode, streamsArg] = process.argv.slice(2)
const streams = Number(streamsArg ?? 40000)
const here = dirname(fileURLToPath(import.meta.url))
const { cert, key } = await createSelfSignedCertificate({ hosts: ['127.0.0.1'] })
const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'bench', cert, key, maxBidirectionalStreams: 1000 })

let workers = []
if (mode === 'workers') {
  workers = [0, 1].map(() => new Worker(join(here, 'multicore-worker.mjs')))
  void distributeConnections(listener, workers)
} else {
  void (async () => { for await (const connection of listener) void serveEcho(connection) })()
}
const dir = mkdtempSync(join(tmpdir(), 'node-msquic-multicore-'))
writeFileSync(join(dir, 'ca.pem'), cert)
const client = spawn(process.execPath, [join(here, 'multicore-client.mjs'), String(listener.address().port), join(dir, 'ca.pem'), String(streams)], { stdio: ['ignore', 'pipe', 'inherit'] })
let out = ''
client.stdout.on('data', d => { out += d })
const code = await new Promise(resolve => client.on('exit', resolve))
rmSync(dir, { recursive: true, force: true })
if (code !== 0) throw new Error(`client exited with ${code}`)
const metrics = JSON.parse(out.trim().split('\n').pop())
console.log(JSON.stringify({ impl: 'node-msquic', workload: 'echo-server', params: { mode, streams }, metrics }))
process.exit(0)
