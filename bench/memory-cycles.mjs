#!/usr/bin/env node
// Memory over many connection open/close cycles (client and server in this process), measured
// after garbage collection: `node --expose-gc bench/memory-cycles.mjs [rounds]` (8,000 cycles a round).
// Shows where the native side levels off; the test suite checks the first 10,000 cycles only.
import { listen, connect, createSelfSignedCertificate } from '../dist/index.js'

const rounds = Number(process.argv[2] ?? 12)
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc')
const { cert, key } = await createSelfSignedCertificate()
const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'memory', cert, key })
void (async () => { for await (const connection of listener) void connection.closed })()
const port = listener.address().port
const cycle = async () => { const c = await connect({ host: '127.0.0.1', port, alpn: 'memory', ca: cert }); await c.close() }
const run = async (count) => {
  let next = 0
  await Promise.all(Array.from({ length: 16 }, async () => { while (next++ < count) await cycle() }))
}
const settled = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc()
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return process.memoryUsage()
}
const mib = bytes => (bytes / 2 ** 20).toFixed(1)
await run(2000)
const base = await settled()
console.log(`after 2,000 cycles: RSS ${mib(base.rss)} MiB, JS heap ${mib(base.heapUsed)} MiB`)
for (let round = 1; round <= rounds; round++) {
  await run(8000)
  const now = await settled()
  console.log(`after ${(2000 + round * 8000).toLocaleString('en-US')} cycles: RSS +${mib(now.rss - base.rss)} MiB, JS heap ${mib(now.heapUsed)} MiB`)
}
await listener.close()
