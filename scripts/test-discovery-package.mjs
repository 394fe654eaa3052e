#!/usr/bin/env node
// `npm run test:discovery-package`: the first hour with discovery, as a new npm user meets it, from
// the packed tarball and the README only. Packs the package (prepack builds it; `--tarball FILE`
// reuses one), then in fresh projects, on Node 24 from the npm registry, with npm's own cache:
// 1. only node-msquic (the README's raw QUIC install line): the QUIC example runs and exits; the
//    discovery import, its example, `node-msquic registry` and the demo's discovery scene say
//    ERR_DISCOVERY_NOT_CONFIGURED with the README's discovery install line; the QUIC example
//    type-checks with the README's TypeScript line and tsconfig;
// 2. the README's discovery install line: the discovery example runs as printed and exits (the time
//    from `npm install` to its first discovered provider is printed), the CLI sequence runs as
//    printed (a registry, a provider, `discover --call`, the demo) and Ctrl-C stops each; every
//    mistake of test/discovery/mistakes.mjs gives its coded error or usage line and exit code;
//    the README's TypeScript examples compile with TypeScript 7 (the README's line) and 5 and the
//    compiled discovery example runs.
// The README's examples are read from README.md, not copied. Prints each step with its time;
// exits non-zero on a failure. Child processes only through async spawn (none blocks this loop).
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { LIVE, cliMistakes, interruptions } from '../test/discovery/mistakes.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const work = mkdtempSync(join(tmpdir(), 'node-msquic-discovery-package-'))
const started = performance.now()
const seconds = ms => `${(ms / 1000).toFixed(1)} s`
const log = line => console.log(`test:discovery-package: ${line}`)
const failures = []
const table = []
function check (ok, what, detail = '') {
  if (!ok) failures.push(`${what}${detail !== '' ? `: ${detail}` : ''}`)
  if (!ok) log(`FAILED: ${what}${detail !== '' ? `\n${detail}` : ''}`)
  return ok
}
function fatal (message) {
  console.error(`test:discovery-package: FAILED: ${message} (files kept in ${work})`)
  process.exit(1)
}

// An outer `npm run` exports its settings as npm_* variables; the projects below must not inherit them.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)))

/** Runs a command to its end (async); a run past `timeout` is killed and reported. */
async function run (command, args, { cwd = work, env = userEnv, timeout = 600_000 } = {}) {
  const begun = performance.now()
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', chunk => { stdout += chunk })
  child.stderr.on('data', chunk => { stderr += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
  const [code, signal] = await new Promise(resolve => child.once('close', (c, s) => resolve([c, s])))
  clearTimeout(timer)
  return { code: code ?? signal, stdout, stderr, output: stdout + stderr, ms: performance.now() - begun }
}

/**
 * Starts a long-running command in a process group of its own (as a terminal runs it), so that
 * interrupt() reaches npx and the node it starts alike, as Ctrl-C does.
 */
const groups = new Set()
// A process group left behind by a failure is ended with this script.
process.on('exit', () => { for (const pid of groups) { try { process.kill(-pid, 'SIGKILL') } catch {} } })

function background (command, args, { cwd, env = userEnv } = {}) {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  groups.add(child.pid)
  const lines = []
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', line => lines.push(line))
  const exited = new Promise(resolve => child.once('exit', (c, s) => resolve(c ?? s)))
  return {
    lines,
    exited,
    async waitFor (pattern, timeout = 60_000) {
      const deadline = performance.now() + timeout
      for (;;) {
        const match = lines.join('\n').match(pattern)
        if (match !== null) return match
        if (child.exitCode !== null || child.signalCode !== null || performance.now() > deadline) {
          throw new Error(`${[command, ...args].join(' ')}: no ${pattern} (${child.exitCode ?? child.signalCode ?? 'still running'}):\n${lines.join('\n')}`)
        }
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    },
    /** Ctrl-C: SIGINT to the whole group; resolves with the exit code and the time it took. */
    async interrupt () {
      const begun = performance.now()
      try { process.kill(-child.pid, 'SIGINT') } catch {}
      const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL') } catch {} }, 30_000)
      const code = await exited
      clearTimeout(timer)
      return { code, ms: performance.now() - begun }
    }
  }
}

// --- Node 24, npm, the tarball ---------------------------------------------------------------------
const node24 = (await run('npx', ['-y', 'node@24', '-p', 'process.execPath'], { env: cleanEnv })).stdout.trim()
const version = (await run(node24, ['--version'], { env: cleanEnv })).stdout.trim()
if (!version.startsWith('v24.')) fatal(`node@24 resolved to ${version || 'nothing'}`)
// What a user with Node 24 has: its node first on PATH (npx, npm and the CLI's shebang use it).
const userEnv = { ...cleanEnv, PATH: [dirname(node24), process.env.PATH].join(delimiter) }

const tarballArg = process.argv.indexOf('--tarball')
let tarball
if (tarballArg > 0) {
  tarball = process.argv[tarballArg + 1]
  log(`using ${tarball}`)
} else {
  log('npm run prepack (dist/, a stripped prebuild), then npm pack')
  const prepack = await run('npm', ['run', 'prepack'], { cwd: root, env: { ...userEnv, ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('NODE_MSQUIC'))) }, timeout: 1_800_000 })
  if (prepack.code !== 0) fatal(`npm run prepack exited with ${prepack.code}:\n${prepack.output.slice(-3000)}`)
  const pack = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root })
  if (pack.code !== 0) fatal(`npm pack exited with ${pack.code}:\n${pack.stderr}`)
  tarball = join(work, JSON.parse(pack.stdout)[0].filename)
  log(`packed ${tarball} in ${seconds(prepack.ms + pack.ms)}`)
}

// --- the README, as printed --------------------------------------------------------------------------
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const section = (title) => {
  const start = readme.indexOf(`\n## ${title}\n`)
  if (start < 0) fatal(`README.md has no "## ${title}" section`)
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end < 0 ? undefined : end)
}
const blocks = (text, lang) => [...text.matchAll(/```(\w+)\n([\s\S]*?)```/g)].filter(m => m[1] === lang).map(m => m[2])
const block = (text, lang, marker, what) => blocks(text, lang).find(code => code.includes(marker)) ?? fatal(`README.md: no ${what}`)
const glance = section('At a glance')
const installation = section('Installation')
const examples = {
  quic: block(glance, 'ts', "from 'node-msquic'", 'QUIC example in "At a glance"'),
  discovery: block(glance, 'ts', "from 'node-msquic/discovery'", 'discovery example in "At a glance"'),
  libp2p: block(readme, 'ts', "from 'node-msquic/libp2p'", 'libp2p transport example')
}
const cliSequence = block(glance, 'sh', 'npx node-msquic registry', 'CLI example in "At a glance"')
const tsconfig = block(installation, 'json', 'compilerOptions', 'tsconfig in "Installation"')
const typescriptLine = /`(npm install -D typescript[^`]*)`/.exec(installation)?.[1] ?? fatal('README.md: no TypeScript install line in "Installation"')

/** A shell line as its words (single and double quotes, a trailing # comment): enough for the README. */
function words (line) {
  const out = []
  let word = null
  let quote = null
  for (const ch of line) {
    if (quote !== null) {
      if (ch === quote) quote = null
      else word += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      word ??= ''
    } else if (/\s/.test(ch)) {
      if (word !== null) out.push(word)
      word = null
    } else if (ch === '#' && word === null) {
      break
    } else {
      word = (word ?? '') + ch
    }
  }
  if (word !== null) out.push(word)
  return out
}
const installLines = blocks(installation, 'sh').flatMap(code => code.split('\n')).map(words).filter(w => w[0] === 'npm' && w[1] === 'install')
const rawLine = installLines.find(w => w.length === 3 && w[2] === 'node-msquic') ?? fatal('README.md: no `npm install node-msquic` line')
const discoveryLine = installLines.find(w => w.some(word => word.startsWith('@libp2p/kad-dht'))) ?? fatal('README.md: no discovery install line')
/** An npm install line of the README with the tarball for node-msquic. */
const withTarball = line => [...line.slice(1).map(w => w === 'node-msquic' ? tarball : w), '--no-audit', '--no-fund', '--prefer-offline']
/** What the NOT_CONFIGURED message must name: the README's line without node-msquic. */
const expectedLine = discoveryLine.filter(w => w !== 'node-msquic').join(' ')

/** A fresh project: package.json as `npm init -y` and `npm pkg set type=module` leave it. */
async function project (name) {
  const dir = join(work, name)
  mkdirSync(dir)
  for (const args of [['init', '-y'], ['pkg', 'set', 'type=module']]) {
    const result = await run('npm', args, { cwd: dir })
    if (result.code !== 0) fatal(`npm ${args.join(' ')}: ${result.stderr}`)
  }
  return dir
}

function row (step, result, extra = '') {
  table.push({ step, exit: result.code, ms: result.ms, extra })
  log(`${step}: exit ${result.code} in ${seconds(result.ms)}${extra !== '' ? ` (${extra})` : ''}`)
}

async function typecheck (dir, tsc, what) {
  const result = await run(node24, [tsc, '-p', 'tsconfig.json'], { cwd: dir })
  row(what, result)
  check(result.code === 0, `${what} reports no error`, result.output)
}

// --- 1. only node-msquic -----------------------------------------------------------------------------
{
  const dir = await project('quic-only')
  const install = await run('npm', withTarball(rawLine), { cwd: dir })
  row(`quic-only: ${rawLine.join(' ')}`, install)
  if (install.code !== 0) fatal(`the raw QUIC install failed:\n${install.output}`)
  writeFileSync(join(dir, 'quic.mjs'), examples.quic)
  writeFileSync(join(dir, 'discovery.mjs'), examples.discovery)

  const quic = await run(node24, ['quic.mjs'], { cwd: dir, timeout: 60_000 })
  row('quic-only: the QUIC example', quic)
  check(quic.code === 0 && quic.stdout.trim() === 'hello', 'the QUIC example prints hello and exits 0', quic.output)

  const notConfigured = (result, what) => {
    check(result.code === 1, `${what}: exit code 1`, result.output)
    check(result.output.includes('ERR_DISCOVERY_NOT_CONFIGURED'), `${what}: ERR_DISCOVERY_NOT_CONFIGURED`, result.output)
    check(result.output.includes(expectedLine), `${what}: names "${expectedLine}"`, result.output)
  }
  const imported = await run(node24, ['--input-type=module', '-e', "await import('node-msquic/discovery')"], { cwd: dir })
  row("quic-only: import('node-msquic/discovery')", imported)
  notConfigured(imported, "import('node-msquic/discovery') without discovery's packages")
  const example = await run(node24, ['discovery.mjs'], { cwd: dir, timeout: 60_000 })
  row('quic-only: the discovery example', example)
  notConfigured(example, "the discovery example without discovery's packages")
  const registry = await run(join(dir, 'node_modules', '.bin', 'node-msquic'), ['registry'], { cwd: dir, timeout: 60_000 })
  row('quic-only: node-msquic registry', registry)
  notConfigured(registry, "node-msquic registry without discovery's packages")
  const demo = await run(join(dir, 'node_modules', '.bin', 'node-msquic'), [], { cwd: dir, timeout: 300_000 })
  row('quic-only: node-msquic (the demo)', demo)
  check(demo.code === 0 && demo.stdout.includes('demo done') && demo.stdout.includes(expectedLine), 'the demo runs QUIC and names the install line for its discovery scene', demo.output)

  const ts = await run('npm', [...typescriptLine.split(' ').slice(1), '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir })
  row(`quic-only: ${typescriptLine}`, ts)
  check(ts.code === 0, 'the TypeScript install', ts.output)
  writeFileSync(join(dir, 'tsconfig.json'), tsconfig)
  mkdirSync(join(dir, 'src'))
  writeFileSync(join(dir, 'src', 'quic.ts'), examples.quic)
  await typecheck(dir, join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), 'quic-only: tsc (the README\'s TypeScript) on the QUIC example')
}

// --- 2. discovery, as the README installs it ----------------------------------------------------------
const dir = await project('discovery')
writeFileSync(join(dir, 'discovery.mjs'), examples.discovery)
const firstFound = performance.now()
const install = await run('npm', withTarball(discoveryLine), { cwd: dir })
row(`discovery: ${discoveryLine.join(' ')}`, install)
if (install.code !== 0) fatal(`the discovery install failed:\n${install.output}`)
{
  const example = background(node24, ['discovery.mjs'], { cwd: dir })
  try {
    await example.waitFor(/region/)
    const toFirst = performance.now() - firstFound
    const code = await example.exited
    const result = { code, ms: performance.now() - firstFound - install.ms }
    row('discovery: the discovery example', result, `npm install to its first discovered provider: ${seconds(toFirst)}`)
    table.push({ step: 'npm install to a first discovered provider', exit: '', ms: toFirst, extra: '' })
    check(code === 0, 'the discovery example exits 0 on its own', example.lines.join('\n'))
    check(/\{ region: 'eu' \} hi/.test(example.lines.join('\n')), 'the discovery example prints the record and the answer', example.lines.join('\n'))
  } catch (error) {
    check(false, 'the discovery example', error.message)
  }
}

// The CLI sequence as printed: registry and provide run on (each in a terminal of its own), the
// others run to their end; the placeholder address is what `registry` printed.
const placeholder = /^\/ip4\/127\.0\.0\.1\/udp\/…\/quic-v1\/p2p\/…$/
const running = []
let address
for (const line of cliSequence.split('\n').filter(l => l.trim() !== '')) {
  const [command, ...args] = words(line).map(w => placeholder.test(w) ? address ?? fatal('the CLI example uses the address before the registry printed it') : w)
  const label = `discovery: ${[command, ...args].join(' ').replace(address ?? '\0', 'ADDR')}`
  const sub = args[1]
  if (sub === 'registry' || sub === 'provide') {
    const begun = performance.now()
    const child = background(command, args, { cwd: dir })
    try {
      if (sub === 'registry') address = (await child.waitFor(/^bootstrap: (\S+)/m))[1]
      else await child.waitFor(/advertised "echo"/)
      row(label, { code: 'running', ms: performance.now() - begun })
      running.push({ label, child })
    } catch (error) {
      check(false, label, error.message)
    }
  } else {
    const result = await run(command, args, { cwd: dir, timeout: 300_000 })
    row(label, result)
    check(result.code === 0, `${label}: exit 0`, result.output)
    if (sub === 'discover') check(/called …\S+ in [\d.]+ ms: "hello/.test(result.stdout) && /1 of 1 provider\(s\) answered/.test(result.stdout), `${label}: calls the provider`, result.output)
    if (sub === undefined) check(/discovered 3 provider\(s\) of "echo"/.test(result.stdout) && /discovery scene done/.test(result.stdout), `${label}: the demo's discovery scene`, result.output)
  }
}

// The mistakes, against the registry and provider the README's commands started.
const bin = join(dir, 'node_modules', '.bin', 'node-msquic')
for (const { mistake, args, exit, output, usage } of cliMistakes) {
  const result = await run(bin, args.map(a => a === LIVE ? address : a), { cwd: dir, timeout: 120_000 })
  row(`mistake: ${mistake}`, result, (result.stderr.split('\n')[0] ?? '').slice(0, 140))
  check(result.code === exit && output.test(result.output) && (usage === undefined || usage.test(result.output)), `mistake: ${mistake}: exit ${exit}, ${output}`, result.output)
}
for (const { command, args, ready, exit, output } of interruptions) {
  const child = background(bin, args.map(a => a === LIVE ? address : a), { cwd: dir })
  try {
    await child.waitFor(ready)
    const { code, ms } = await child.interrupt()
    row(`Ctrl-C: ${command}`, { code, ms })
    check(code === exit && (output === undefined || output.test(child.lines.join('\n'))), `Ctrl-C: ${command}: exit ${exit}`, child.lines.join('\n'))
  } catch (error) {
    check(false, `Ctrl-C: ${command}`, error.message)
  }
}
{
  writeFileSync(join(dir, 'api-mistakes.mjs'), `
import * as discovery from 'node-msquic/discovery'
import { runApiMistakes } from ${JSON.stringify(pathToFileURL(join(root, 'test', 'discovery', 'mistakes.mjs')).href)}
console.log(JSON.stringify(await runApiMistakes(discovery, process.argv[2])))
`)
  const result = await run(node24, ['api-mistakes.mjs', address], { cwd: dir, timeout: 300_000 })
  if (check(result.code === 0, 'the API mistakes ran', result.output)) {
    for (const r of JSON.parse(result.stdout.trim().split('\n').at(-1))) {
      row(`API mistake: ${r.mistake}`, { code: r.got ?? '', ms: r.ms }, r.ok ? '' : r.message)
      check(r.ok, `API mistake: ${r.mistake}: expected ${r.expected}`, r.message)
    }
  }
}
// The README's table of defaults names constants the package exports.
{
  const table = section('API').split('The defaults a user meets:')[1]?.split('\n\n')[1] ?? ''
  // The last column of each row.
  const constants = table.split('\n').filter(line => line.startsWith('|')).map(line => line.split('|').at(-2) ?? '').join(' ')
  const named = [...new Set([...constants.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map(m => m[1]))]
  const result = await run(node24, ['--input-type=module', '-e', "console.log(JSON.stringify(Object.keys(await import('node-msquic/discovery'))))"], { cwd: dir })
  const exported = result.code === 0 ? JSON.parse(result.stdout) : []
  const missing = named.filter(name => !exported.includes(name))
  log(`the README's defaults table names ${named.length} constants${missing.length > 0 ? `; not exported: ${missing.join(', ')}` : ', all exported'}`)
  check(named.length >= 10 && missing.length === 0, "the README's defaults table names exported constants", `named ${named.join(', ')}; missing ${missing.join(', ')}`)
}

// Ctrl-C on the README's commands, through npx, as a terminal sends it (the whole process group).
// npx ends itself with the signal it got once its child exited: it exits "by SIGINT", not 0.
for (const { label, child } of running.reverse()) {
  const { code, ms } = await child.interrupt()
  row(`Ctrl-C: ${label}`, { code, ms })
  check(code === 0 || code === 'SIGINT', `Ctrl-C: ${label}: exit 0 (or npx's own SIGINT)`, child.lines.join('\n'))
  check(!/node-msquic: interrupted|Error/.test(child.lines.join('\n')), `Ctrl-C: ${label}: a clean stop`, child.lines.join('\n'))
}

// TypeScript: the README's line (the latest, 7.x) and 5.x, with the README's tsconfig.
{
  const ts = await run('npm', [...typescriptLine.split(' ').slice(1), '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir })
  row(`discovery: ${typescriptLine}`, ts)
  check(ts.code === 0, 'the TypeScript install', ts.output)
  writeFileSync(join(dir, 'tsconfig.json'), tsconfig)
  mkdirSync(join(dir, 'src'))
  for (const [name, code] of Object.entries(examples)) writeFileSync(join(dir, 'src', `${name}.ts`), code)
  const tsVersion = JSON.parse(readFileSync(join(dir, 'node_modules', 'typescript', 'package.json'), 'utf8')).version
  await typecheck(dir, join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), `tsc ${tsVersion} on the README's examples`)
  const compiled = await run(node24, [join('dist', 'discovery.js')], { cwd: dir, timeout: 60_000 })
  row('the discovery example compiled by tsc', compiled)
  check(compiled.code === 0 && /\{ region: 'eu' \} hi/.test(compiled.stdout), 'the compiled discovery example runs and exits 0', compiled.output)
  const ts5 = join(work, 'typescript-5')
  mkdirSync(ts5)
  const install5 = await run('npm', ['install', 'typescript@5', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: ts5 })
  check(install5.code === 0, 'typescript@5 installs', install5.output)
  const version5 = JSON.parse(readFileSync(join(ts5, 'node_modules', 'typescript', 'package.json'), 'utf8')).version
  await typecheck(dir, join(ts5, 'node_modules', 'typescript', 'bin', 'tsc'), `tsc ${version5} on the README's examples`)
}

console.log('\nstep | exit | time')
for (const { step, exit, ms, extra } of table) console.log(`${step} | ${exit} | ${seconds(ms)}${extra !== '' ? ` | ${extra}` : ''}`)
if (failures.length > 0) {
  console.error(`\ntest:discovery-package: ${failures.length} FAILED (files kept in ${work}):\n- ${failures.join('\n- ')}`)
  process.exit(1)
}
rmSync(work, { recursive: true, force: true })
log(`passed in ${seconds(performance.now() - started)}`)
