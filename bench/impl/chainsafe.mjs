// @chainsafe/libp2p-quic with libp2p: the Node QUIC alternative, used as its README shows.
// Workloads follow ../../../shared/anchors/chainsafe-echo.mjs (see libp2p-common.mjs).
import { quic } from '@chainsafe/libp2p-quic'
import { libp2pWorkloads } from './libp2p-common.mjs'

export const { bulk, echo, handshakes } = libp2pWorkloads(() => quic())
