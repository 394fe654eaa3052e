// Helpers shared by the benchmark implementations (one process per measurement).
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

export const MiB = 2 ** 20

/** CPU time of this process's main (JS) thread, in milliseconds. */
export function mainThreadCpuMs () {
  if (typeof process.threadCpuUsage === 'function') {
    const { user, system } = process.threadCpuUsage()
    return (user + system) / 1000
  }
  // utime and stime of the main thread, in clock ticks (100 per second on Linux).
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

export function percentile (values, p) {
  if (values.length === 0) return 0
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

/**
 * Runs `total` operations, `concurrency` at a time; each returns its latency in microseconds or
 * throws. Stops waiting after `timeoutMs` and reports a hang instead of retrying.
 */
export async function runOps ({ total, concurrency, timeoutMs }, op) {
  const latencies = []
  let started = 0
  let completed = 0
  let errors = 0
  let firstError
  const begin = performance.now()
  const worker = async () => {
    while (started < total) {
      started++
      const t = performance.now()
      try {
        await op()
        latencies.push((performance.now() - t) * 1000)
      } catch (error) {
        errors++
        firstError ??= error
      }
      completed++
    }
  }
  let timer
  const timeout = new Promise(resolve => { timer = setTimeout(() => resolve('hung'), timeoutMs) })
  const outcome = await Promise.race([Promise.all(Array.from({ length: concurrency }, worker)), timeout])
  clearTimeout(timer)
  const seconds = (performance.now() - begin) / 1000
  return {
    seconds,
    completed,
    errors,
    hung: outcome === 'hung',
    latencies,
    firstError: firstError === undefined ? undefined : String(firstError?.message ?? firstError)
  }
}

/** A 64 KiB chunk of recognisable bytes. */
export const CHUNK = Buffer.alloc(64 * 1024, 0x5a)

/**
 * Opens `count` connections with `dial` (50 at a time) after one warm-up connection, and reports the
 * process's RSS growth per connection. Returns the connections too, for the caller to close.
 */
export async function measureIdle (dial, count) {
  const warm = await dial()
  global.gc?.()
  const before = process.memoryUsage().rss
  const clients = []
  for (let i = 0; i < count; i += 50) {
    clients.push(...await Promise.all(Array.from({ length: Math.min(50, count - i) }, dial)))
  }
  global.gc?.()
  const after = process.memoryUsage().rss
  return { bytesPerConnection: (after - before) / count, opened: [warm, ...clients] }
}

/** Echoes every stream of a node-msquic connection back to its sender. */
export async function serveEcho (connection) {
  for await (const stream of connection) {
    stream.on('error', () => {})
    void (async () => {
      const chunks = []
      for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk)
      stream.end(Buffer.concat(chunks))
    })()
  }
}

/**
 * Runs one measurement process and resolves with the last JSON line it printed, or with
 * `{ error }`: its last line on stderr, or that it was killed after `limitMs`.
 */
export function runChild (file, args, { cwd, limitMs }) {
  return new Promise(resolve => {
    const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const line = stdout.trim().split('\n').filter(l => l.startsWith('{')).pop()
      if (code === 0 && line !== undefined) return resolve(JSON.parse(line))
      // The last line that is not part of a stack trace or Node's version banner says what failed.
      const said = stderr.trim().split('\n').filter(l => l.trim() !== '' && !/^\s*at |^Node\.js v\d|^\s*[{}]|^\s*code: /.test(l)).pop()
      resolve({ error: signal === 'SIGKILL' ? `killed after ${limitMs / 1000} s` : (said ?? `exit ${code}`) })
    })
  })
}
