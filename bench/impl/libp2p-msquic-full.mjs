// node-msquic/libp2p with session resumption off (`sessionTickets: false`): every dial a full
// handshake, certificate verified, as @chainsafe/libp2p-quic does them.
import { msquic } from '../../dist/libp2p/index.js'
import { libp2pWorkloads } from './libp2p-common.mjs'

export const { handshakes, setup } = libp2pWorkloads(() => msquic({ sessionTickets: false }))
