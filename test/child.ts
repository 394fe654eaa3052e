/**
 * Child processes for the tests, run asynchronously: a test never blocks its event loop on one
 * (vitest's worker must keep answering its runner, and a test's own servers must keep serving).
 */
import { spawn } from 'node:child_process'

export interface ChildResult {
  /** The exit code, or null when a signal ended it. */
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Milliseconds before the child is killed (SIGKILL); it then ends with that signal. */
  timeout?: number
  /** Written to the child's stdin, which is then closed. */
  input?: string
}

/** Runs `command args` to its end, collecting its output (as spawnSync would, without blocking). */
export async function run (command: string, args: string[], options: RunOptions = {}): Promise<ChildResult> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
  child.stdin?.end(options.input)
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const timer = options.timeout === undefined ? undefined : setTimeout(() => { child.kill('SIGKILL') }, options.timeout)
  try {
    const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code, sig) => { resolve([code, sig]) })
    })
    return { status, signal, stdout, stderr }
  } finally {
    clearTimeout(timer)
  }
}

/** Runs a Node script (this Node) and returns its stdout; rejects with its stderr if it fails. */
export async function runNode (args: string[], options: RunOptions = {}): Promise<string> {
  const result = await run(process.execPath, args, options)
  if (result.status !== 0) throw new Error(`node ${args.join(' ').slice(0, 80)} exited with ${result.status ?? result.signal}: ${result.stderr}`)
  return result.stdout
}
