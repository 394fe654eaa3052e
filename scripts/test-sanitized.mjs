#!/usr/bin/env node
// `npm run test:sanitized`: the whole test suite against the addon built with AddressSanitizer and
// UndefinedBehaviorSanitizer (MsQuic and its TLS library included), with the sanitizer runtimes
// preloaded into Node. Any report fails the run. Leak checking is off here (Node and V8 keep memory
// until exit by design); the native harness covers leaks (`quic_harness stress` under LSan).
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--sanitize=address,undefined'], { stdio: 'inherit' })
const runtime = name => execFileSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim()
const env = {
  ...process.env,
  NODE_MSQUIC_ADDON: join(root, 'build-sanitize', 'Release', 'node_msquic.node'),
  LD_PRELOAD: [runtime('libasan.so'), runtime('libubsan.so')].join(':'),
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1'
}
try {
  execFileSync(process.execPath, [join(root, 'scripts', 'test.mjs'), ...process.argv.slice(2)], { stdio: 'inherit', env })
} catch (error) {
  process.exit(error.status ?? 1)
}
