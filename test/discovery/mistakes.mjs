// The mistakes a new user of node-msquic/discovery makes in the first hour (from the packed
// tarball and the README only), each with what it must give: a coded error or a usage line, an exit
// code. One list for two runners: test/discovery/mistakes.test.ts (the build in dist/, and src/) and
// scripts/test-discovery-package.mjs (the npm tarball installed in a fresh project). Plain
// JavaScript, no imports: the package runner loads it under whichever Node runs the script.

/** In `args`: replaced by the address of a live registry (what `node-msquic registry` printed). */
export const LIVE = '<live registry>'
/** A well-formed QUIC address nothing listens on (UDP port 9, discard). */
export const NOBODY = '/ip4/127.0.0.1/udp/9/quic-v1'
/** The README's placeholder for a registry's address, copied as it is. */
export const PLACEHOLDER = '/ip4/127.0.0.1/udp/…/quic-v1/p2p/…'

const usage = command => new RegExp(`\\nUsage: node-msquic ${command}`)

/**
 * Command lines that must fail: `exit` is the exit code, `output` matches stderr (and stdout).
 * Usage errors (exit code 2) come before anything starts.
 */
export const cliMistakes = [
  { mistake: 'an option another command takes (registry --port 4000)', args: ['registry', '--port', '4000'], exit: 2, output: /node-msquic: unknown option --port/, usage: usage('registry') },
  { mistake: 'provide without --bootstrap', args: ['provide', 'echo'], exit: 2, output: /provide needs --bootstrap ADDR: the address `node-msquic registry` prints/, usage: usage('provide NAME --bootstrap ADDR') },
  { mistake: 'discover without --bootstrap', args: ['discover', 'echo'], exit: 2, output: /discover needs --bootstrap ADDR/, usage: usage('discover NAME --bootstrap ADDR') },
  { mistake: "metadata written as JavaScript, not JSON (--metadata \"{region:'eu'}\")", args: ['provide', 'echo', '--bootstrap', NOBODY, '--metadata', "{region:'eu'}"], exit: 2, output: /--metadata must be JSON, such as '\{"region":"eu"\}'/, usage: usage('provide') },
  { mistake: 'a TTL with a unit (--ttl 1m)', args: ['provide', 'echo', '--bootstrap', NOBODY, '--ttl', '1m'], exit: 2, output: /The "--ttl" option must be a whole number of milliseconds; received "1m"/, usage: usage('provide') },
  { mistake: 'a TTL below the minimum (--ttl 10)', args: ['provide', 'echo', '--bootstrap', NOBODY, '--ttl', '10'], exit: 2, output: /The "--ttl" option must be a number of milliseconds from 100 to 2147483647; received 10/, usage: usage('provide') },
  { mistake: "the README's placeholder as the bootstrap address", args: ['discover', 'echo', '--bootstrap', PLACEHOLDER], exit: 2, output: /The "--bootstrap" option must be a QUIC multiaddr such as \/ip4\/<address>\/udp\/<port>\/quic-v1\/p2p\/<peer id>/, usage: usage('discover') },
  { mistake: 'a host:port as the bootstrap address', args: ['provide', 'echo', '--bootstrap', '127.0.0.1:4001'], exit: 2, output: /The "--bootstrap" option must be a QUIC multiaddr/, usage: usage('provide') },
  { mistake: 'a TCP address to listen on', args: ['registry', '--listen', '/ip4/0.0.0.0/tcp/4001'], exit: 2, output: /The "--listen" option must be a QUIC multiaddr such as \/ip4\/<address>\/udp\/<port>\/quic-v1 \(port 0: a free one\)/, usage: usage('registry') },
  { mistake: 'no service name', args: ['discover', '--bootstrap', NOBODY], exit: 2, output: /discover needs a service NAME/, usage: usage('discover') },
  { mistake: '--expect 0', args: ['discover', 'echo', '--bootstrap', NOBODY, '--expect', '0'], exit: 2, output: /The "--expect" option must be an integer ≥ 1; received 0/, usage: usage('discover') },
  { mistake: 'a misspelt command (regsitry)', args: ['regsitry'], exit: 2, output: /node-msquic: unknown command "regsitry"/, usage: /\nUsage:\n {2}node-msquic \[--no-discovery\]/ },
  { mistake: 'a bootstrap address nobody listens on', args: ['discover', 'echo', '--bootstrap', NOBODY], exit: 1, output: /node-msquic: no bootstrap peer answered: .* \(ERR_DISCOVERY_DIAL_FAILED\)/ },
  { mistake: 'a service nobody provides', args: ['discover', 'nobody-provides-this', '--bootstrap', LIVE], exit: 1, output: /node-msquic: no live record of "nobody-provides-this" was found \(ERR_DISCOVERY_NOT_FOUND\)/ }
]

/**
 * Ctrl-C (SIGINT) once the command printed `ready`: it stops what it started and exits with `exit`.
 * `discover` waits for a second provider that never comes, so it is interrupted mid-query.
 */
export const interruptions = [
  { command: 'discover (waiting for more providers)', args: ['discover', 'echo', '--bootstrap', LIVE, '--expect', '2', '--timeout', '60000'], ready: /found …/, exit: 130, output: /node-msquic: interrupted/ },
  { command: 'provide', args: ['provide', 'echo-too', '--bootstrap', LIVE], ready: /advertised "echo-too"/, exit: 0 },
  { command: 'registry', args: ['registry'], ready: /^bootstrap: /m, exit: 0 }
]

const refused = async (promise) => { await promise; return 'resolved' }

/**
 * API calls that must fail (`code`, and `message` if given) or, with `code: undefined`, succeed.
 * `run(discovery, live)` gets the module node-msquic/discovery and a live registry's address, and
 * stops whatever it starts.
 */
export const apiMistakes = [
  {
    mistake: 'a bootstrap that is not a multiaddr',
    code: 'ERR_INVALID_ARG_VALUE',
    message: /The "bootstrap\[0\]" option must be a QUIC multiaddr such as \/ip4\/<address>\/udp\/<port>\/quic-v1\/p2p\/<peer id>.*received "127\.0\.0\.1:4001"/,
    run: async ({ ServiceRegistry }) => await ServiceRegistry.create({ bootstrap: ['127.0.0.1:4001'] })
  },
  {
    mistake: "the README's placeholder as the bootstrap address",
    code: 'ERR_INVALID_ARG_VALUE',
    message: /"bootstrap\[0\]" option must be a QUIC multiaddr/,
    run: async ({ ServiceRegistry }) => await ServiceRegistry.create({ bootstrap: [PLACEHOLDER] })
  },
  {
    mistake: 'a peer id that does not parse',
    code: 'ERR_INVALID_ARG_VALUE',
    message: /"bootstrap" option must be a QUIC multiaddr/,
    run: async ({ ServiceRegistry }) => await ServiceRegistry.create({ bootstrap: '/ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3KooWnotapeerid' })
  },
  {
    mistake: 'a port as the bootstrap',
    code: 'ERR_INVALID_ARG_TYPE',
    message: /The "bootstrap" option must be a multiaddr string or an array of them; received 4001/,
    run: async ({ ServiceRegistry }) => await ServiceRegistry.create({ bootstrap: 4001 })
  },
  {
    mistake: 'one bootstrap address as a string, not in an array (accepted)',
    code: undefined,
    run: async ({ ServiceRegistry }, live) => { await (await ServiceRegistry.create({ bootstrap: live })).stop() }
  },
  {
    mistake: 'no bootstrap: advertise()',
    code: 'ERR_DISCOVERY_NOT_CONFIGURED',
    message: /advertise\(\) needs a peer and this registry knows none: pass `bootstrap`/,
    run: async ({ ServiceRegistry }) => {
      const registry = await ServiceRegistry.create()
      try { return await refused(registry.advertise('echo')) } finally { await registry.stop() }
    }
  },
  {
    mistake: 'no bootstrap: resolve()',
    code: 'ERR_DISCOVERY_NOT_CONFIGURED',
    message: /resolve\(\) needs a peer .* or `firstNode: true` for the first node of a network/,
    run: async ({ ServiceRegistry }) => {
      const registry = await ServiceRegistry.create()
      try { return await refused(registry.resolve('echo')) } finally { await registry.stop() }
    }
  },
  {
    mistake: 'an empty service name',
    code: 'ERR_INVALID_ARG_VALUE',
    message: /The "name" argument must be a non-empty string of at most 255 UTF-8 bytes/,
    run: async (discovery, live) => await withMember(discovery, live, async registry => await refused(registry.resolve('')))
  },
  {
    mistake: 'a service name that is not a string',
    code: 'ERR_INVALID_ARG_TYPE',
    message: /The "name" argument must be a string; received 42/,
    run: async (discovery, live) => await withMember(discovery, live, async registry => await refused(registry.advertise(42)))
  },
  {
    mistake: 'fanOut: 0',
    code: 'ERR_OUT_OF_RANGE',
    message: /The "fanOut" option must be an integer ≥ 1; received 0/,
    run: async (discovery, live) => await withMember(discovery, live, async registry => await refused(registry.resolve('echo', { fanOut: 0 })))
  },
  {
    mistake: "ttl: '1m'",
    code: 'ERR_INVALID_ARG_TYPE',
    message: /The "ttl" option must be a number of milliseconds; received "1m"/,
    run: async (discovery, live) => await withMember(discovery, live, async registry => await refused(registry.advertise('echo', { ttl: '1m' })))
  },
  {
    mistake: 'metadata over 1024 bytes',
    code: 'ERR_OUT_OF_RANGE',
    run: async (discovery, live) => await withMember(discovery, live, async registry => await refused(registry.advertise('echo', { metadata: 'x'.repeat(2000) })))
  },
  ...['resolve', 'advertise', 'discover', 'watch', 'handle', 'request', 'dial', 'bootstrap', 'client', 'multiaddrs'].map(method => ({
    mistake: `${method}${method === 'multiaddrs' ? '' : '()'} after stop()`,
    code: 'ERR_DISCOVERY_SHUTDOWN',
    run: async ({ ServiceRegistry }, live) => {
      const registry = await ServiceRegistry.create({ bootstrap: live })
      const record = { name: 'echo', peerId: registry.peerId.toString(), multiaddrs: [], metadata: undefined, sequence: 1, expiresAt: Date.now() + 60_000 }
      await registry.stop()
      const calls = {
        resolve: () => registry.resolve('echo'),
        advertise: () => registry.advertise('echo'),
        discover: async () => { for await (const _ of registry.discover('echo')); },
        watch: async () => { for await (const _ of registry.watch('echo')); },
        handle: () => registry.handle('/echo/1', request => request),
        request: () => registry.request(record, '/echo/1', 'hi'),
        dial: () => registry.dial(record, '/echo/1'),
        bootstrap: () => registry.bootstrap(live),
        client: () => registry.client('echo', { protocol: '/echo/1' }),
        multiaddrs: () => registry.multiaddrs
      }
      return await refused((async () => await calls[method]())())
    }
  })),
  {
    mistake: "an advertisement's refresh() after stop()",
    code: 'ERR_DISCOVERY_SHUTDOWN',
    run: async ({ ServiceRegistry }, live) => {
      const registry = await ServiceRegistry.create({ bootstrap: live })
      const advertisement = await registry.advertise('echo-refreshed')
      await registry.stop()
      return await refused(advertisement.refresh())
    }
  },
  {
    mistake: 'a watch whose signal aborts (it ends, no error)',
    code: undefined,
    run: async (discovery, live) => await withMember(discovery, live, async registry => {
      for await (const _ of registry.watch('echo', { interval: 50, signal: AbortSignal.timeout(200) }));
    })
  }
]

async function withMember ({ ServiceRegistry }, live, fn) {
  const registry = await ServiceRegistry.create({ bootstrap: live })
  try {
    return await fn(registry)
  } finally {
    await registry.stop()
  }
}

/**
 * Runs each API mistake: { mistake, expected, got, ok, ms }. `discovery` is the module
 * node-msquic/discovery; `live` a live registry's address.
 */
export async function runApiMistakes (discovery, live) {
  const results = []
  for (const { mistake, code, message, run } of apiMistakes) {
    const started = performance.now()
    let got
    try {
      await run(discovery, live)
      got = { code: undefined, message: 'resolved' }
    } catch (error) {
      got = { code: error?.code, message: String(error?.message ?? error), name: error?.name }
    }
    const ok = got.code === code && (message === undefined || message.test(got.message))
    results.push({ mistake, expected: code ?? 'resolves', got: got.code ?? got.message, message: got.message, ok, ms: performance.now() - started })
  }
  return results
}
