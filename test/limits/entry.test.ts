import { describe, it, expect } from 'vitest'
import { runNode } from '../child.js'

describe('node-msquic/limits', () => {
  it('should resolve as a subpath export and load no native code', async () => {
    // A child process resolves the package by its own name (dist/, which `npm test` builds first).
    const script = `
      const limits = await import('node-msquic/limits')
      const native = process.report.getReport().sharedObjects.some(f => f.endsWith('.node'))
      console.log(JSON.stringify({ names: Object.keys(limits).sort(), native }))`
    const output = await runNode(['--input-type=module', '-e', script], { cwd: process.cwd() })
    const { names, native } = JSON.parse(output)
    expect(names).toEqual(expect.arrayContaining(['LimitsError', 'LimitsErrorCode', 'OperationLimiter', 'Permit', 'ProviderPool', 'Reservation', 'TransientConnectionManager', 'systemClock']))
    expect(native).toBe(false)
  })
})
