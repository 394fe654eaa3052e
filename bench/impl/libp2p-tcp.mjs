// js-libp2p over TCP + noise + yamux: the reference stack, the same workloads.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { libp2pWorkloads } from './libp2p-common.mjs'

export const { bulk, echo, handshakes, overload, setup } = libp2pWorkloads(() => tcp(), {
  listenAddress: '/ip4/127.0.0.1/tcp/0',
  extra: { connectionEncrypters: [noise()], streamMuxers: [yamux()] }
})
