// node-msquic against quinn (rustls), both directions, and quinn against itself (see suite.ts).
import { defineInteropSuite } from './suite.js'

defineInteropSuite('quinn', { streams: 50, streamSize: 32 * 1024, large: 32 * 1024 * 1024 })
