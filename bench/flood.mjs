#!/usr/bin/env node
// `node bench/flood.mjs [--smoke]`: legitimate clients connecting during a handshake flood.
// A listener on 127.0.0.1 accepts (and keeps) every connection; a second process starts 3,000
// handshakes that never complete (bench/flood-attacker.mjs: 2,000 replayed Initials from fresh
// ports, sent again every 200 ms, 500 clients whose certificate check never answers, 500 with a
// wrong ALPN); meanwhile this process connects 200 legitimate clients, one every 10 ms, each with a 5 s deadline.
// Three listeners in one run: no flood (reference); the defaults (handshakes bounded apart from
// the backlog, Retry from 128 handshakes on); and the earlier design (one bound of 512 for
// handshaking and waiting connections together, no Retry), emulated with maxHandshakes 512 and
// retryAbove false. Prints a markdown table; test/quic/flood.test.ts asserts on runFlood().
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { listen, connect, createSelfSignedCertificate } from '../dist/index.js'
import { writeSection } from './sections.mjs'

const attackerScript = fileURLToPath(new URL('./flood-attacker.mjs', import.meta.url))

const percentile = (sorted, p) => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

/**
 * One run: `flood` = { replays, stalled, wrongAlpn } (or null), `legit` clients `intervalMs` apart.
 * Resolves to { connected, total, p50, p99, max, stats } (times in ms; stats: the listener's at the end
 * of the legitimate connects, with the highest `handshaking` seen).
 */
export async function runFlood ({ listenOptions = {}, flood, legit = 200, intervalMs = 10, deadlineMs = 5000 }) {
  const { cert, key } = await createSelfSignedCertificate()
  const alpn = 'flood'
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn, cert, key, ...listenOptions })
  const port = listener.address().port
  const accepted = []
  void (async () => { for await (const connection of listener) accepted.push(connection) })()
  let attacker
  let attack = null
  if (flood != null) {
    attacker = spawn(process.execPath, [attackerScript, String(port), alpn, String(flood.replays), String(flood.stalled), String(flood.wrongAlpn)], { stdio: ['ignore', 'pipe', 'inherit'] })
    const lines = createInterface({ input: attacker.stdout })[Symbol.asyncIterator]()
    attack = JSON.parse((await lines.next()).value)
    attacker.lines = lines
  }
  let peakHandshaking = 0
  const sampler = setInterval(() => { peakHandshaking = Math.max(peakHandshaking, listener.stats().handshaking) }, 5)
  const times = []
  let connected = 0
  const failures = new Map()
  const clients = []
  await Promise.all(Array.from({ length: legit }, async (_, i) => {
    await new Promise(resolve => setTimeout(resolve, i * intervalMs))
    const started = performance.now()
    try {
      clients.push(await connect({ host: '127.0.0.1', port, alpn, ca: cert, signal: AbortSignal.timeout(deadlineMs) }))
      times.push(performance.now() - started)
      connected++
    } catch (error) {
      failures.set(error.code, (failures.get(error.code) ?? 0) + 1)
    }
  }))
  clearInterval(sampler)
  const stats = { ...listener.stats(), peakHandshaking }
  let replies
  if (attacker !== undefined) {
    attacker.kill('SIGTERM')
    const line = (await attacker.lines.next()).value
    replies = line === undefined ? undefined : JSON.parse(line)
    await once(attacker, 'exit')
  }
  await Promise.all(clients.map(async client => await client.close()))
  await listener.close()
  await Promise.all(accepted.map(async connection => await connection.close()))
  const sorted = times.sort((a, b) => a - b)
  return { connected, total: legit, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? NaN, failures: Object.fromEntries(failures), stats, attack, replies }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const smoke = process.argv.includes('--smoke')
  const flood = smoke ? { replays: 200, stalled: 50, wrongAlpn: 50 } : { replays: 2000, stalled: 500, wrongAlpn: 500 }
  const legit = smoke ? 20 : 200
  const runs = [
    ['no flood (reference)', {}, null],
    ['defaults: maxHandshakes 1024, backlog 512 apart, Retry from 128', {}, flood],
    ['earlier design: one bound of 512 for handshaking + waiting, no Retry', { maxHandshakes: 512, retryAbove: false }, flood]
  ]
  const out = [`# Handshake flood${smoke ? ' (smoke: tiny sizes, figures meaningless)' : ''}`, '',
    `${flood.replays + flood.stalled + flood.wrongAlpn} never-completing handshakes (${flood.replays} replayed Initials, ${flood.stalled} stalled certificate checks, ${flood.wrongAlpn} wrong ALPN) ` +
    `from another process, the replays sent again every 200 ms; ${legit} legitimate clients, one every 10 ms, 5 s deadline each. Node ${process.version}.`, '',
    '| listener | legitimate clients connected | p50 ms | p99 ms | max ms | failures | peak handshaking | refused (handshakes / backlog) | first reply to each replay: Retry / handshake |',
    '|---|---:|---:|---:|---:|---|---:|---:|---:|']
  const ms = n => Number.isNaN(n) ? '–' : n.toFixed(1)
  const results = []
  for (const [name, listenOptions, attack] of runs) {
    const r = await runFlood({ listenOptions, flood: attack, legit })
    results.push(r)
    const failed = Object.entries(r.failures).map(([code, n]) => `${n} ${code}`).join(', ') || '–'
    out.push(`| ${name} | ${r.connected}/${r.total} (${(100 * r.connected / r.total).toFixed(0)}%) | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${failed} | ${r.stats.peakHandshaking} | ` +
      `${r.stats.refusedBy.handshakes} / ${r.stats.refusedBy.backlog} | ${r.replies === undefined ? '–' : `${r.replies.replies.retry} / ${r.replies.replies.handshake} (${r.replies.resent.toLocaleString('en-US')} sent again)`} |`)
  }
  const [reference, ours] = results
  out.push('', `p99 under the flood: ${(ours.p99 / reference.p99).toFixed(1)}× the unflooded p99 (same run).`)
  console.log(out.join('\n'))
  if (!smoke) writeSection('flood', out.join('\n').replace(/^# /, '## ') + '\n\n_Written by `node bench/flood.mjs`._')
  if (ours.connected < ours.total * (smoke ? 0.5 : 0.95)) {
    console.error(`bench/flood.mjs: FAILED: only ${ours.connected} of ${ours.total} legitimate clients connected under the flood`)
    process.exit(1)
  }
}
