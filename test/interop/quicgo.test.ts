// node-msquic against quic-go, both directions, and quic-go against itself (see suite.ts).
import { defineInteropSuite } from './suite.js'

defineInteropSuite('quicgo', { streams: 50, streamSize: 32 * 1024, large: 32 * 1024 * 1024 })
