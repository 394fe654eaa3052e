// node-msquic against aioquic, both directions, and aioquic against itself (see suite.ts). aioquic is
// pure Python above its crypto: smaller sizes keep the file within a minute or so.
import { defineInteropSuite } from './suite.js'

defineInteropSuite('aioquic', { streams: 20, streamSize: 8 * 1024, large: 4 * 1024 * 1024 })
