// @libp2p/interface-compliance-tests' transport suite on node-msquic/libp2p (dist/, built by
// `npm test` first). Mocha runs it (the suites use mocha's `this.skip()`/`this.timeout()`):
// scripts/test.mjs runs `mocha test/compliance`. The stream-muxer suite does not apply: it runs a
// muxer over an in-memory byte pipe, and QUIC's streams are the QUIC connection's own (there is no
// muxer over bytes to give it); the transport suite runs our streams over real connections.
import tests from '@libp2p/interface-compliance-tests/transport'
import { QUIC_V1 } from '@multiformats/multiaddr-matcher'
import { msquic } from '../../dist/libp2p/index.js'

describe('interface-compliance-tests: transport (node-msquic/libp2p)', function () {
  this.timeout(60_000)
  tests({
    async setup () {
      return {
        dialer: { transports: [msquic()], connectionMonitor: { enabled: false } },
        listener: {
          // Two addresses: the suite dials both ("should listen on multiple addresses").
          addresses: { listen: ['/ip4/127.0.0.1/udp/0/quic-v1', '/ip4/127.0.0.1/udp/0/quic-v1'] },
          transports: [msquic()],
          connectionMonitor: { enabled: false }
        },
        dialMultiaddrMatcher: QUIC_V1,
        listenMultiaddrMatcher: QUIC_V1
      }
    },
    async teardown () {}
  })
})
