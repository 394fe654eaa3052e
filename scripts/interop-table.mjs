#!/usr/bin/env node
// Writes the README's "Interoperability" table from the last interop run's results
// (build/interop/<stack>.json, written by test/interop). The table sits between two markers in
// README.md; `--print` prints it instead of writing.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dir = join(root, 'build', 'interop')
const START = '<!-- interop-table:start (scripts/interop-table.mjs writes this from the last interop run) -->'
const END = '<!-- interop-table:end -->'
const STACKS = ['quic-go', 'quinn', 'aioquic']
const DIRECTIONS = [['node→peer', 'node-msquic client'], ['peer→node', 'node-msquic server'], ['peer→peer', 'peer alone']]
const MARK = { pass: '✅', fail: '❌', 'known-defect': '⚠️' }

const runs = existsSync(dir)
  ? readdirSync(dir).filter(f => f.endsWith('.json')).map(f => JSON.parse(readFileSync(join(dir, f), 'utf8')))
  : []
if (runs.length === 0) {
  console.error('interop-table: no results in build/interop (run npm test -- test/interop first)')
  process.exit(1)
}
const byStack = new Map(runs.map(run => [run.stack, run]))
const stacks = STACKS.filter(s => byStack.has(s)).concat([...byStack.keys()].filter(s => !STACKS.includes(s)))
const scenarios = []
for (const run of runs) for (const row of run.results) if (!scenarios.includes(row.scenario)) scenarios.push(row.scenario)

const cell = (stack, direction, scenario) => {
  const row = byStack.get(stack)?.results.find(r => r.direction === direction && r.scenario === scenario)
  return row === undefined ? '–' : MARK[row.status] ?? row.status
}

const header = ['feature', ...stacks.flatMap(stack => DIRECTIONS.map(([, label]) => `${stack}: ${label}`))]
const lines = [
  `| ${header.join(' | ')} |`,
  `|${header.map(() => '---').join('|')}|`,
  ...scenarios.map(scenario => `| ${scenario} | ${stacks.flatMap(stack => DIRECTIONS.map(([direction]) => cell(stack, direction, scenario))).join(' | ')} |`)
]
const known = new Map()
for (const run of runs) for (const row of run.results) if (row.status === 'known-defect') known.set(`${row.direction} ${row.scenario}`, row.error)
const finished = runs.map(run => run.finished).sort().at(-1)
const notes = [
  '',
  `✅ passed, ❌ failed, ⚠️ a known node-msquic defect (the test expects the failure), – not run. "node-msquic client" is node-msquic connecting to the peer's server, "node-msquic server" the peer's client connecting to node-msquic, "peer alone" the peer against itself (the control). Last run: ${finished?.slice(0, 16).replace('T', ' ')} UTC.`,
  '"resumption": node-msquic\'s client resumes with a session ticket (it sends no 0-RTT data yet); the peers\' clients resume and send their request as 0-RTT data.',
  ...[...known].map(([what, why]) => `- ⚠️ ${what}: ${why}`)
]
const table = [...lines, ...notes].join('\n')

if (process.argv.includes('--print')) {
  console.log(table)
} else {
  const readmePath = join(root, 'README.md')
  const readme = readFileSync(readmePath, 'utf8')
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  if (start < 0 || end < start) {
    console.error('interop-table: README.md has no interop-table markers')
    process.exit(1)
  }
  writeFileSync(readmePath, readme.slice(0, start + START.length) + '\n' + table + '\n' + readme.slice(end))
  console.log('interop-table: README.md updated')
}
