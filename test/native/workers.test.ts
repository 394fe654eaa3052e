import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { describe, it, expect } from 'vitest'
import { setWorkerCount } from '../../src/index.js'
import { runNode } from '../child.js'

const fixture = fileURLToPath(new URL('./fixtures/threads.mjs', import.meta.url))
const threads = async (...args: string[]): Promise<number> => Number((await runNode([fixture, ...args])).trim())

describe('MsQuic worker threads', () => {
  it('should start one worker per CPU this process may use, unless told otherwise', async () => {
    const one = await threads('1')
    const three = await threads('3')
    expect(three - one).toBe(2)
    expect(await threads()).toBe(await threads(String(availableParallelism())))
  })

  it('should refuse a worker count that makes no sense', () => {
    expect(() => setWorkerCount(0)).toThrow(RangeError)
    expect(() => setWorkerCount(1.5)).toThrow(RangeError)
  })
})
