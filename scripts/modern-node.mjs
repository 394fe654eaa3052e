// The project supports Node >= 22; this machine kind ships Node 20. Scripts that run project code
// (tests, benchmarks) use this Node if it is new enough, else Node 24 from the npm registry (npx).
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** Runs `node <args>` on a supported Node; returns the exit status. */
export function runOnModernNode (args, options = {}) {
  const major = Number(process.versions.node.split('.')[0])
  if (major >= 22) return spawnSync(process.execPath, args, { stdio: 'inherit', ...options }).status ?? 1
  console.log(`node-msquic: Node ${process.versions.node} is older than 22; running under Node 24 (npx node@24)`)
  return spawnSync('npx', ['-y', 'node@24', ...args], { stdio: 'inherit', ...options }).status ?? 1
}

// `node scripts/modern-node.mjs <script> [args]` (npm run demo): the same for a script of the package.
if (process.argv[1] === fileURLToPath(import.meta.url)) process.exit(runOnModernNode(process.argv.slice(2)))
