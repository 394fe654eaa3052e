import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect } from 'vitest'

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

/** Runs the CLI to its end (async: the test's event loop keeps running). */
async function run (args: string[], input?: string): Promise<{ status: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  if (input !== undefined) child.stdin!.end(input)
  const status = await new Promise<number | null>(resolve => child.once('close', resolve))
  return { status, stdout, stderr }
}

describe('node-msquic command', () => {
  it('should run the loopback demo and report what happened', async () => {
    const result = await run([])
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/certificate verified/)
    expect(result.stdout).toMatch(/10,000 echo requests/)
    expect(result.stdout).toMatch(/64\.0 MiB on one stream/)
    expect(result.stdout).toMatch(/demo done/)
    // The discovery scene: a registry, three providers and a client as processes.
    expect(result.stdout).toMatch(/discovered 3 provider\(s\) of "echo"/)
    expect(result.stdout.match(/\[client\] client \S+: called /g)).toHaveLength(3)
    expect(result.stdout).toMatch(/discovery scene done/)
  })

  it('should echo through serve and connect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'node-msquic-cli-'))
    const ca = join(dir, 'ca.pem')
    const server = spawn(process.execPath, [cli, 'serve', '--port', '0', '--ca-out', ca], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      const port = await new Promise<string>((resolve, reject) => {
        server.stdout.on('data', (data: Buffer) => {
          const match = /listening on [\d.]+:(\d+)/.exec(data.toString())
          if (match !== null) resolve(match[1])
        })
        server.on('exit', code => reject(new Error(`serve exited with ${code}`)))
      })
      const result = await run(['connect', '--port', port, '--ca', ca], 'over QUIC')
      expect(result.status).toBe(0)
      expect(result.stdout).toBe('over QUIC')
      const untrusted = await run(['connect', '--port', port, '--message', 'x'])
      expect(untrusted.status).toBe(1)
      expect(untrusted.stderr).toMatch(/ERR_QUIC_CERTIFICATE/)
    } finally {
      server.kill('SIGINT')
      // Ctrl-C closes the listener and the server exits 0.
      expect(await new Promise(resolve => server.once('exit', resolve))).toBe(0)
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('should refuse an unknown option or a bad port with the usage and exit code 2', async () => {
    for (const args of [['serve', '--listen', 'x'], ['connect'], ['connect', '--port', '99999'], ['serve', '--cert', 'c.pem']]) {
      const result = await run(args)
      expect(result.status, args.join(' ')).toBe(2)
      expect(result.stderr).toMatch(new RegExp(`^node-msquic: .*\\nUsage: node-msquic ${args[0]}`))
    }
  })
}, 120_000)
