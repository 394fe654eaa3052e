// node-msquic/libp2p: js-libp2p on this package's transport, the same workloads as chainsafe.
import { msquic } from '../../dist/libp2p/index.js'
import { libp2pWorkloads } from './libp2p-common.mjs'

export const { bulk, echo, handshakes } = libp2pWorkloads(() => msquic())
