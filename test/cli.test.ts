import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect } from 'vitest'
import { run } from './child.js'

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

describe('node-msquic command', () => {
  it('should run the loopback demo and report what happened', async () => {
    const result = await run(process.execPath, [cli], { timeout: 60_000 })
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
      const result = await run(process.execPath, [cli, 'connect', '--port', port, '--ca', ca], { input: 'over QUIC', timeout: 20_000 })
      expect(result.status).toBe(0)
      expect(result.stdout).toBe('over QUIC')
      const untrusted = await run(process.execPath, [cli, 'connect', '--port', port, '--message', 'x'], { timeout: 20_000 })
      expect(untrusted.status).toBe(1)
      expect(untrusted.stderr).toMatch(/ERR_QUIC_CERTIFICATE/)
    } finally {
      server.kill('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
