#!/usr/bin/env node
// `node bench/limits.mjs [--smoke]`: the limits layer (node-msquic/limits) on its own, no network.
//   1. Throughput on the JS thread, uncontended: acquire/release, tryReserve/promote and friends.
//   2. The cost under contention: permits handed from release to waiter, refusals at a full budget.
//   3. The seed's mixed-class storm over 145 simulated provider connections (95 + 50): one limiter
//      above routing (ProviderPool) against the per-provider design (a limiter per provider), which
//      is written here for comparison only. Per-class latency percentiles, peaks and utilisation.
// Prints markdown tables. `--smoke` runs everything tiny and only checks the figures add up (CI).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const entry = join(root, 'dist', 'limits', 'index.js')
if (!existsSync(entry)) {
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
  if (tsc.status !== 0) process.exit(tsc.status ?? 1)
}
const { OperationLimiter, ProviderPool, TransientConnectionManager } = await import(pathToFileURL(entry).href)

const smoke = process.argv.includes('--smoke')
const size = smoke
  ? { ops: 20_000, repeat: 1, workers: 50, handoffs: 5_000, stormMs: 300 }
  : { ops: 2_000_000, repeat: 5, workers: 1000, handoffs: 500_000, stormMs: 5_000 }
const failures = []
const check = (ok, what) => { if (!ok) failures.push(what) }

const SEED_CLASSES = { queue: { guaranteed: 30 }, healthCheck: { guaranteed: 60, ceiling: 60 }, streaming: { guaranteed: 55 } }
const PROVIDERS = [{ id: 'a', maxConnections: 95 }, { id: 'b', maxConnections: 50 }]
const CAPACITY = 145

const fmt = n => Math.round(n).toLocaleString('en-US')
const median = values => [...values].sort((a, b) => a - b)[values.length >> 1]
const percentile = (sorted, p) => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

/** Operations per second of `run(n)` (which does n operations), the median of `repeat` runs. */
async function rate (run) {
  await run(Math.min(size.ops, 50_000))
  const rates = []
  for (let i = 0; i < size.repeat; i++) {
    const started = performance.now()
    await run(size.ops)
    rates.push(size.ops / ((performance.now() - started) / 1000))
  }
  return median(rates)
}

// 1. Uncontended throughput --------------------------------------------------------------------
const throughput = []
{
  const limiter = new OperationLimiter({ capacity: CAPACITY, classes: SEED_CLASSES })
  throughput.push(['OperationLimiter: tryAcquire() + release()', await rate(n => {
    for (let i = 0; i < n; i++) limiter.tryAcquire('queue').release()
  })])
  throughput.push(['OperationLimiter: await acquire() + release()', await rate(async n => {
    for (let i = 0; i < n; i++) (await limiter.acquire('streaming')).release()
  })])
  check(limiter.inUse === 0, 'limiter back to zero after the throughput runs')

  const transient = new TransientConnectionManager({ budget: 1024, ttl: 10_000, perAddressLimit: 8 })
  throughput.push(['TransientConnectionManager: tryReserve() + promote()', await rate(n => {
    for (let i = 0; i < n; i++) transient.tryReserve(i).promote(i)
  })])
  throughput.push(['TransientConnectionManager: tryReserve({ address }) + release()', await rate(n => {
    for (let i = 0; i < n; i++) transient.tryReserve(i, { address: '10.0.0.1' }).release('done')
  })])
  check(transient.count === 0, 'transient manager back to zero after the throughput runs')
  transient.close()
}

// 2. Under contention --------------------------------------------------------------------------
const contention = []
{
  // Many workers, few permits: every release hands the permit to a waiter (the dispatch path).
  const limiter = new OperationLimiter({ capacity: 16, classes: { a: { guaranteed: 4 }, b: { guaranteed: 4, weight: 2 }, c: { guaranteed: 0, weight: 1 } } })
  let left = size.handoffs
  const worker = async cls => {
    while (left-- > 0) {
      const permit = await limiter.acquire(cls)
      await null
      permit.release()
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: size.workers }, (_, i) => worker(['a', 'b', 'c'][i % 3])))
  const seconds = (performance.now() - started) / 1000
  contention.push([`OperationLimiter: ${size.workers} workers on 16 permits (acquire, release to a waiter)`, size.handoffs / seconds])
  check(limiter.inUse === 0 && limiter.waiting === 0, 'contended limiter back to zero')

  // A full budget: what a refusal costs (the flood case).
  const transient = new TransientConnectionManager({ budget: 1024, ttl: 10_000 })
  for (let i = 0; i < 1024; i++) transient.tryReserve(`held-${i}`)
  contention.push(['TransientConnectionManager: tryReserve() refused at a full budget', await rate(n => {
    for (let i = 0; i < n; i++) transient.tryReserve(i)
  })])
  check(transient.count === 1024 && transient.stats().rejected.budget > 0, 'refusals counted at a full budget')
  transient.close()

  // One sweep expiring a whole budget at once.
  let expired = 0
  const sweeps = []
  for (let r = 0; r < size.repeat; r++) {
    let now = 0
    const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} }
    const big = new TransientConnectionManager({ budget: 100_000, ttl: 1000, clock })
    for (let i = 0; i < 100_000; i++) big.tryReserve(i)
    now = 2000
    const started = performance.now()
    expired = big.sweep()
    sweeps.push(expired / ((performance.now() - started) / 1000))
  }
  contention.push(['TransientConnectionManager: sweep() expiring 100,000 reservations (entries/s)', median(sweeps)])
  check(expired === 100_000, 'the sweep expired every reservation')
}

// 3. The mixed-class storm ---------------------------------------------------------------------
// Simulated providers: a connection is a token; an operation holds it 2–10 ms (a timer).
const serviceTime = () => 2 + Math.random() * 8
const DEMAND = { queue: 60, healthCheck: 200, streaming: 150 }

/** A FIFO counting semaphore (what the seed's per-provider design is built of). */
class Semaphore {
  constructor (n) { this.free = n; this.waiters = [] }
  async acquire () { if (this.free > 0 && this.waiters.length === 0) { this.free--; return } await new Promise(resolve => this.waiters.push(resolve)) }
  release () { const next = this.waiters.shift(); if (next !== undefined) next(); else this.free++ }
}

/**
 * The per-provider design (nzbdav's first QoS fix): each provider wraps its own connection pool in
 * its own class semaphores (Queue 30, HealthCheck 60, Streaming 55), and an operation is routed to
 * the provider with the most idle connections before any class limit is checked.
 */
function perProviderDesign () {
  const providers = PROVIDERS.map(p => ({
    id: p.id,
    connections: new Semaphore(p.maxConnections),
    idle: p.maxConnections,
    classes: Object.fromEntries(Object.entries(SEED_CLASSES).map(([cls, c]) => [cls, new Semaphore(c.guaranteed)]))
  }))
  return {
    run: async (cls, fn) => {
      const provider = providers.reduce((best, p) => p.idle > best.idle ? p : best)
      await provider.classes[cls].acquire()
      try {
        await provider.connections.acquire()
        provider.idle--
        try { return await fn(provider.id) } finally { provider.idle++; provider.connections.release() }
      } finally { provider.classes[cls].release() }
    },
    close: async () => {}
  }
}

/** The design in node-msquic/limits: one limiter above routing, one pool of provider connections. */
function globalDesign () {
  const limiter = new OperationLimiter({ capacity: CAPACITY, classes: SEED_CLASSES })
  const pool = new ProviderPool({
    limiter,
    providers: PROVIDERS.map(p => ({ ...p, connect: async () => ({ provider: p.id }) }))
  })
  return { run: async (cls, fn) => await pool.run(cls, async connection => await fn(connection.provider)), close: async () => await pool.close() }
}

async function storm (design) {
  const latencies = Object.fromEntries(Object.keys(DEMAND).map(cls => [cls, []]))
  const running = { queue: 0, healthCheck: 0, streaming: 0, a: 0, b: 0, total: 0 }
  const peak = { ...running }
  // Time-weighted concurrency per class and in all, measured once every class is running.
  const area = { queue: 0, healthCheck: 0, streaming: 0, total: 0 }
  let lastChange = performance.now()
  const started = lastChange
  // Queue arrives last, into a pool the others have filled (the seed's starvation case).
  const queueAt = started + size.stormMs / 5
  const deadline = started + size.stormMs
  // Called before each change of `running`: adds the time since the last change, clipped to the window.
  const account = () => {
    const now = Math.min(performance.now(), deadline)
    const from = Math.max(lastChange, queueAt)
    if (now > from) for (const key of Object.keys(area)) area[key] += running[key] * (now - from)
    lastChange = Math.max(lastChange, now)
  }
  const worker = async cls => {
    if (cls === 'queue') await new Promise(resolve => setTimeout(resolve, queueAt - performance.now()))
    while (performance.now() < deadline) {
      const requested = performance.now()
      await design.run(cls, async provider => {
        account()
        for (const key of [cls, provider, 'total']) { running[key]++; peak[key] = Math.max(peak[key], running[key]) }
        await new Promise(resolve => setTimeout(resolve, serviceTime()))
        account()
        for (const key of [cls, provider, 'total']) running[key]--
      })
      latencies[cls].push(performance.now() - requested)
    }
  }
  await Promise.all(Object.entries(DEMAND).flatMap(([cls, n]) => Array.from({ length: n }, () => worker(cls))))
  account()
  // Average over the window where every class has demand (from Queue's arrival to the deadline).
  const window = deadline - queueAt
  const average = Object.fromEntries(Object.entries(area).map(([key, value]) => [key, value / window]))
  await design.close()
  return { latencies, peak, average, utilisation: average.total / CAPACITY }
}

const designs = [['one limiter above routing (ProviderPool)', globalDesign], ['per-provider limiters (seed design, for comparison)', perProviderDesign]]
const storms = []
for (const [name, make] of designs) storms.push([name, await storm(make())])

// Report ---------------------------------------------------------------------------------------
const out = []
out.push(`# node-msquic/limits benchmark${smoke ? ' (smoke: tiny sizes, figures meaningless)' : ''}`, '')
out.push(`Node ${process.version}, ${size.ops.toLocaleString('en-US')} operations per run, median of ${size.repeat}.`, '')
out.push('## Throughput on the JS thread, uncontended', '', '| operation (one acquire and one release = one operation) | ops/s |', '|---|---:|')
for (const [name, ops] of throughput) out.push(`| ${name} | ${fmt(ops)} |`)
out.push('', '## Under contention', '', '| case | ops/s |', '|---|---:|')
for (const [name, ops] of contention) out.push(`| ${name} | ${fmt(ops)} |`)
out.push('', `## Mixed-class storm: 145 connections (95 + 50), ${size.stormMs} ms, closed-loop workers ` +
  `(Queue ${DEMAND.queue}, HealthCheck ${DEMAND.healthCheck}, Streaming ${DEMAND.streaming}), 2–10 ms per operation`, '')
out.push('Limits: Queue 30 guaranteed, HealthCheck 60 guaranteed and ceiling 60, Streaming 55 guaranteed. Queue starts at a fifth of the run, ' +
  'into a full pool. Latency is from the request to the end of the operation (waits included); averages and utilisation are time-weighted ' +
  'from Queue\'s arrival to the end.', '')
out.push('| design | class | operations | p50 ms | p95 ms | p99 ms | peak at once | average at once |', '|---|---|---:|---:|---:|---:|---:|---:|')
for (const [name, result] of storms) {
  for (const cls of Object.keys(DEMAND)) {
    const sorted = result.latencies[cls].sort((a, b) => a - b)
    out.push(`| ${name} | ${cls} | ${fmt(sorted.length)} | ${percentile(sorted, 0.5).toFixed(1)} | ${percentile(sorted, 0.95).toFixed(1)} | ${percentile(sorted, 0.99).toFixed(1)} | ${result.peak[cls]} | ${result.average[cls].toFixed(1)} |`)
  }
}
out.push('', '| design | utilisation of the 145 connections | peak on a (95) | peak on b (50) | peak HealthCheck (limit 60) | average Queue (guarantee 30) |', '|---|---:|---:|---:|---:|---:|')
for (const [name, result] of storms) {
  out.push(`| ${name} | ${(result.utilisation * 100).toFixed(1)}% | ${result.peak.a} | ${result.peak.b} | ${result.peak.healthCheck} | ${result.average.queue.toFixed(1)} |`)
}

const ours = storms[0][1]
check(ours.peak.healthCheck <= 60, 'HealthCheck stayed within its ceiling of 60 under the pool')
check(ours.peak.a <= 95 && ours.peak.b <= 50, 'each provider stayed within its connections under the pool')
check(ours.peak.queue + ours.peak.healthCheck + ours.peak.streaming >= 1 && Object.values(ours.latencies).every(l => l.length > 0), 'every class completed operations')
console.log(out.join('\n'))
if (failures.length > 0) {
  console.error(`\nbench/limits.mjs: FAILED: ${failures.join('; ')}`)
  process.exit(1)
}
