import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { DISCOVERY_PACKAGES } from '../../src/discovery/peers.js'

const node = async (script: string): Promise<string> => (await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8' })).stdout

describe('node-msquic/discovery', () => {
  it('should resolve as a subpath export and load no native code until a registry starts', async () => {
    // A child process resolves the package by its own name (dist/, which `npm test` builds first).
    const output = await node(`
      const discovery = await import('node-msquic/discovery')
      const native = process.report.getReport().sharedObjects.some(f => f.endsWith('.node'))
      console.log(JSON.stringify({ names: Object.keys(discovery).sort(), native }))`)
    const { names, native } = JSON.parse(output)
    expect(names).toEqual(expect.arrayContaining(['ServiceRegistry', 'Advertisement', 'ServiceClient', 'DiscoveryError', 'DiscoveryErrorCode', 'QueryLayer', 'Reputation', 'nameToCid', 'verifyRecord', 'DEFAULT_DHT_PROTOCOL']))
    expect(native).toBe(false)
  })

  it('exports at run time (entry.js, which checks the peer packages first) every value its types (index.js) declare', async () => {
    const output = await node(`
      const entry = await import('node-msquic/discovery')
      const index = await import('./dist/discovery/index.js')
      console.log(JSON.stringify({ entry: Object.keys(entry).sort(), index: Object.keys(index).sort(), same: Object.keys(index).every(k => entry[k] === index[k]) }))`)
    const { entry, index, same } = JSON.parse(output)
    expect(entry).toEqual(index)
    expect(same).toBe(true)
  })

  it('names in its install line the majors package.json accepts as peer dependencies', () => {
    const { peerDependencies } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    for (const spec of DISCOVERY_PACKAGES) {
      const at = spec.lastIndexOf('@')
      expect(peerDependencies[spec.slice(0, at)], spec).toMatch(new RegExp(`^\\^${spec.slice(at + 1)}\\.`))
    }
  })
})
