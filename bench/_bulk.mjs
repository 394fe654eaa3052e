import { libp2pWorkloads } from '/work/main/bench/impl/libp2p-common.mjs'
import { msquic } from '/work/main/dist/libp2p/index.js'
const opts = JSON.parse(process.argv[2] ?? '{}')
const { bulk } = libp2pWorkloads(() => msquic(opts))
const r = await bulk({ bytes: 512 * 2 ** 20, direction: process.argv[3] ?? 'up' })
console.log(process.argv[2], process.argv[3], r.mibPerSecond.toFixed(0), 'MiB/s', r.mainThreadCpuMsPerMiB.toFixed(2), 'ms/MiB')
process.exit(0)
