import { execFileSync } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { describe, it, expect } from 'vitest'
import { setWorkerCount } from '../../src/index.js'

const fixture = fileURLToPath(new URL('./fixtures/threads.mjs', import.meta.url))
const threads = (...args: string[]): number => Number(execFileSync(process.execPath, [fixture, ...args], { encoding: 'utf8' }).trim())

describe('MsQuic worker threads', () => {
  it('should start one worker per CPU this process may use, unless told otherwise', () => {
    const one = threads('1')
    const three = threads('3')
    expect(three - one).toBe(2)
    expect(threads()).toBe(threads(String(availableParallelism())))
  })

  it('should refuse a worker count that makes no sense', () => {
    expect(() => setWorkerCount(0)).toThrow(RangeError)
    expect(() => setWorkerCount(1.5)).toThrow(RangeError)
  })
})
