import { describe, expect, it } from 'vitest'
import { runNode } from '../child.js'

describe('node-msquic/discovery', () => {
  it('should resolve as a subpath export and load no native code until a registry starts', async () => {
    // A child process resolves the package by its own name (dist/, which `npm test` builds first).
    const script = `
      const discovery = await import('node-msquic/discovery')
      const native = process.report.getReport().sharedObjects.some(f => f.endsWith('.node'))
      console.log(JSON.stringify({ names: Object.keys(discovery).sort(), native }))`
    const output = await runNode(['--input-type=module', '-e', script], { cwd: process.cwd() })
    const { names, native } = JSON.parse(output)
    expect(names).toEqual(expect.arrayContaining(['ServiceRegistry', 'Advertisement', 'ServiceClient', 'DiscoveryError', 'DiscoveryErrorCode', 'QueryLayer', 'Reputation', 'nameToCid', 'verifyRecord', 'DEFAULT_DHT_PROTOCOL']))
    expect(native).toBe(false)
  })
})
