#!/usr/bin/env node
// A single-process smoke run of the package's API over loopback, for a prebuild on a system the test
// suite cannot run on (arm64 under qemu-user, where child processes do not start; musl; an older
// glibc). scripts/check-prebuild.mjs runs it with NODE_MSQUIC_ADDON naming the file. Steps: load,
// listen and connect, a stream each way (client-opened and server-opened), the request path, an
// 8 MiB echo checked by hash, and a connection moved to a worker thread that serves it there.
// Timeouts are generous (x10 under emulation: SMOKE_SLOW=1), as the point is correctness, not speed.
// Prints one line per step with its time, then a JSON summary line; exits non-zero on any failure.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'

const slow = process.env.SMOKE_SLOW === '1' ? 10 : 1
const started = performance.now()
const steps = []

async function step (name, seconds, run) {
  const begun = performance.now()
  let timer
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: no result within ${seconds * slow} s`)), seconds * slow * 1000)
  })
  try {
    const detail = await Promise.race([run(), timeout])
    const ms = Math.round(performance.now() - begun)
    steps.push({ name, ms })
    console.log(`smoke: ${name}: ok in ${ms} ms${detail === undefined ? '' : ` (${detail})`}`)
  } finally {
    clearTimeout(timer)
  }
}

// Reads to the end without destroying the stream (a plain for await would): some replies follow.
const readAll = async stream => {
  const chunks = []
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk)
  return Buffer.concat(chunks)
}
const sha256 = data => createHash('sha256').update(data).digest('hex')

let api
await step('load', 30, async () => {
  api = await import('../dist/index.js')
  const files = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\n').map(line => line.slice(line.indexOf('/'))))]
  const addons = files.filter(path => path.endsWith('.node'))
  if (addons.length !== 1) throw new Error(`expected one addon mapped, found ${addons.join(', ') || 'none'}`)
  // Which C library this process runs on (and C++ library, for glibc's): the point of some runs.
  const libraries = files.filter(path => /\/(libc[.-][^/]*|ld-musl[^/]*|libstdc\+\+[^/]*)$/.test(path))
  return `${process.arch}, ${process.version}, ${addons[0]}; on ${libraries.join(', ')}`
})
const { connect, createSelfSignedCertificate, distributeConnections, listen } = api

const { cert, key } = await createSelfSignedCertificate()
let listener, client, server
await step('listen and connect', 20, async () => {
  listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'smoke', cert, key })
  client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'smoke', ca: cert })
  server = await listener.accept()
  return `port ${listener.address().port}`
})

/** A stream `from` opens and `to` accepts: a message along it and the answer back. */
async function exchange (from, to, message) {
  const opened = await from.openStream()
  opened.end(message)
  const accepted = await to.acceptStream()
  accepted.end(`answered: ${await readAll(accepted)}`)
  return (await readAll(opened)).toString()
}
await step('a stream each way', 20, async () => {
  const got = [await exchange(client, server, 'from the client'), await exchange(server, client, 'from the server')]
  if (got.join() !== 'answered: from the client,answered: from the server') throw new Error(`got ${JSON.stringify(got)}`)
})

await step('8 MiB echo', 60, async () => {
  const echoing = server.acceptStream().then(stream => { stream.pipe(stream) })
  const data = randomBytes(8 << 20)
  const stream = await client.openStream()
  stream.end(data)
  const [back] = await Promise.all([readAll(stream), echoing])
  if (sha256(back) !== sha256(data)) throw new Error(`${back.length} bytes came back, not the ${data.length} sent`)
  return `sha256 ${sha256(back).slice(0, 12)}`
})
await client.close()
await listener.close()

await step('request path', 30, async () => {
  const requests = await listen({ host: '127.0.0.1', port: 0, alpn: 'smoke', cert, key })
  requests.serveRequests(body => Buffer.concat([Buffer.from('re: '), body]), { concurrency: 16 })
  const caller = await connect({ host: '127.0.0.1', port: requests.address().port, alpn: 'smoke', ca: cert })
  const replies = await Promise.all(Array.from({ length: 64 }, (_, i) => caller.request(`request ${i}`, { timeout: 20000 * slow })))
  const wrong = replies.map(String).filter((reply, i) => reply !== `re: request ${i}`)
  await caller.close()
  await requests.close()
  if (wrong.length > 0) throw new Error(`${wrong.length} wrong replies, first ${JSON.stringify(wrong[0])}`)
  return '64 requests, 16 at a time'
})

await step('worker thread', 60, async () => {
  // The worker loads the same addon (NODE_MSQUIC_ADDON is process-wide) and serves what it adopts.
  const index = new URL('../dist/index.js', import.meta.url).href
  const worker = new Worker(`
    const { threadId } = require('node:worker_threads')
    import(${JSON.stringify(index)}).then(({ receiveConnections }) => receiveConnections(async connection => {
      for await (const stream of connection) {
        const chunks = []
        for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk)
        stream.end('worker ' + threadId + ': ' + Buffer.concat(chunks))
      }
    }))`, { eval: true })
  await new Promise((resolve, reject) => { worker.once('online', resolve); worker.once('error', reject) })
  const { threadId } = worker
  const workers = await listen({ host: '127.0.0.1', port: 0, alpn: 'smoke', cert, key })
  const distributing = distributeConnections(workers, [worker])
  const caller = await connect({ host: '127.0.0.1', port: workers.address().port, alpn: 'smoke', ca: cert })
  const stream = await caller.openStream()
  stream.end('hello')
  const reply = (await readAll(stream)).toString()
  await caller.close()
  await workers.close()
  await distributing
  await worker.terminate()
  if (reply !== `worker ${threadId}: hello`) throw new Error(`the worker replied ${JSON.stringify(reply)}`)
  return reply
})

const total = Math.round(performance.now() - started)
console.log(JSON.stringify({ smoke: 'passed', arch: process.arch, node: process.version, ms: total, steps }))
