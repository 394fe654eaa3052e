#!/usr/bin/env node
// `node bench/memory.mjs [--smoke]`: resident memory around bulk transfers in worker threads.
// A listener on the main thread sends 64 MiB down each of 4 streams to each of 4 worker threads
// (1 GiB in all); then every connection closes. Resident memory (RSS) is sampled during the
// transfer (peak), right after the last close, 2 s later, and after the listener closed. Run twice,
// each in a process of its own: with the idle trim off (setIdleTrim(false): the memory glibc keeps
// in its arenas stays resident) and with the default (a trim 1 s after the last connection closed).
// For memory over many small connections, see bench/memory-cycles.mjs.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Worker, isMainThread, workerData } from 'node:worker_threads'
import { listen, connect, createSelfSignedCertificate, setIdleTrim } from '../dist/index.js'
import { writeSection } from './sections.mjs'

const MiB = 2 ** 20
const self = fileURLToPath(import.meta.url)

async function worker ({ port, cert, streams }) {
  const connection = await connect({ host: '127.0.0.1', port, alpn: 'memory', ca: cert })
  await Promise.all(Array.from({ length: streams }, async () => {
    const stream = await connection.openStream()
    stream.end('go')
    for await (const chunk of stream) void chunk
  }))
  await connection.close()
}

async function measure ({ trim, workers, streams, perStream }) {
  if (!trim) setIdleTrim(false)
  const { cert, key } = await createSelfSignedCertificate()
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'memory', cert, key })
  const chunk = Buffer.alloc(256 * 1024, 7)
  const accepted = []
  const send = async stream => {
    for (let sent = 0; sent < perStream; sent += chunk.length) if (!stream.write(chunk)) await new Promise(resolve => stream.once('drain', resolve))
    stream.end()
  }
  void (async () => {
    for await (const connection of listener) {
      accepted.push(connection)
      void (async () => { for (;;) { const stream = await connection.acceptStream().catch(() => null); if (stream === null) return; stream.resume(); void send(stream) } })()
    }
  })()
  const rss = () => process.memoryUsage().rss / MiB
  const start = rss()
  let peak = start
  const sampler = setInterval(() => { peak = Math.max(peak, rss()) }, 20)
  await Promise.all(Array.from({ length: workers }, async () => await new Promise((resolve, reject) => {
    const w = new Worker(self, { workerData: { port: listener.address().port, cert, streams } })
    w.on('exit', resolve)
    w.on('error', reject)
  })))
  clearInterval(sampler)
  await Promise.all(accepted.map(async connection => await connection.close()))
  const closed = rss()
  await new Promise(resolve => setTimeout(resolve, 2000))
  const later = rss()
  await listener.close()
  await new Promise(resolve => setTimeout(resolve, 200))
  return { start, peak, closed, later, end: rss() }
}

if (!isMainThread) {
  await worker(workerData)
} else if (process.argv[2] === '--child') {
  console.log(JSON.stringify(await measure(JSON.parse(process.argv[3]))))
} else {
  const smoke = process.argv.includes('--smoke')
  const size = smoke ? { workers: 2, streams: 2, perStream: 4 * MiB } : { workers: 4, streams: 4, perStream: 64 * MiB }
  const run = trim => {
    const child = spawnSync(process.execPath, [self, '--child', JSON.stringify({ ...size, trim })], { encoding: 'utf8' })
    if (child.status !== 0) throw new Error(`bench/memory.mjs child failed: ${child.stderr}`)
    return JSON.parse(child.stdout.trim().split('\n').at(-1))
  }
  const rows = [['idle trim off (setIdleTrim(false))', run(false)], ['default: trim 1 s after the last connection closed', run(true)]]
  const f = n => n.toFixed(0)
  const total = size.workers * size.streams * size.perStream / MiB
  const report = [`# Resident memory around bulk transfers${smoke ? ' (smoke: tiny sizes, figures meaningless)' : ''}`, '',
    `${size.workers} worker threads × ${size.streams} streams × ${size.perStream / MiB} MiB (${total} MiB) from a listener on the main thread; RSS in MiB. Node ${process.version}.`, '',
    '| run | before | peak during | right after the last close | 2 s later | listener closed |', '|---|---:|---:|---:|---:|---:|',
    ...rows.map(([name, r]) => `| ${name} | ${f(r.start)} | ${f(r.peak)} | ${f(r.closed)} | ${f(r.later)} | ${f(r.end)} |`)].join('\n')
  console.log(report)
  if (!smoke) writeSection('memory', report.replace(/^# /, '## ') + '\n\n_Written by `node bench/memory.mjs`._')
  const [off, on] = rows.map(([, r]) => r)
  if (!smoke && on.later > off.later) {
    console.error('bench/memory.mjs: FAILED: the idle trim left more resident than no trim')
    process.exit(1)
  }
}
