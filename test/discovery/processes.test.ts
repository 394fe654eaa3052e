// The blocked team's scenario end to end: a registry, three providers and a client, each its own
// process (the built CLI in dist/), on loopback. Providers advertise before anyone asks; the client
// discovers all three and calls each.
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterEach, describe, expect, it } from 'vitest'

const cli = join(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const children: ChildProcess[] = []
afterEach(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
  await Promise.all(children.splice(0).map(async c => { if (c.exitCode === null && c.signalCode === null) await new Promise(resolve => c.once('exit', resolve)) }))
})

function start (args: string[]): { process: ChildProcess, lines: string[], waitFor: (pattern: RegExp) => Promise<RegExpMatchArray> } {
  const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(proc)
  const lines: string[] = []
  const waiters: Array<() => void> = []
  createInterface({ input: proc.stdout! }).on('line', line => { lines.push(line); for (const w of waiters.splice(0)) w() })
  proc.stderr!.on('data', chunk => { lines.push(`stderr: ${String(chunk)}`) })
  const waitFor = async (pattern: RegExp): Promise<RegExpMatchArray> => {
    for (;;) {
      for (const line of lines) { const m = line.match(pattern); if (m !== null) return m }
      if (proc.exitCode !== null) throw new Error(`${args[0]} exited (${proc.exitCode}): ${lines.join('\n')}`)
      await new Promise<void>(resolve => { waiters.push(resolve); proc.once('exit', () => resolve()) })
    }
  }
  return { process: proc, lines, waitFor }
}

describe('discovery across processes', () => {
  it('registry + 3 providers + a client: the client discovers all three and calls each', async () => {
    const registry = start(['registry'])
    const [, bootstrap] = await registry.waitFor(/^bootstrap: (\S+)/)
    const providers = ['eu', 'us', 'ap'].map(region => start(['provide', 'echo', '--bootstrap', bootstrap, '--metadata', JSON.stringify({ region })]))
    const ids = await Promise.all(providers.map(async p => (await p.waitFor(/^provider (\S+): advertised "echo"/))[1]))
    expect(new Set(ids).size).toBe(3)

    const client = start(['discover', 'echo', '--bootstrap', bootstrap, '--expect', '3', '--call', '--timeout', '20000'])
    const code = await new Promise(resolve => client.process.once('exit', resolve))
    expect(code, client.lines.join('\n')).toBe(0)
    const output = client.lines.join('\n')
    expect(output).toMatch(/discovered 3 provider\(s\) of "echo"/)
    for (const [i, id] of ids.entries()) {
      expect(output).toContain(`found ${id}`)
      expect(output).toContain(`"region":"${['eu', 'us', 'ap'][i]}"`)
      expect(output).toMatch(new RegExp(`called ${id.replace('…', '.')} in [\\d.]+ ms: "hello .*from ${id.replace('…', '.')} \\(echo\\)`))
    }
  }, 60_000)
})
