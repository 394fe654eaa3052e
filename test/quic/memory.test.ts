import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { setIdleTrim, trimMemory } from '../../src/index.js'
import { run } from '../child.js'

const bench = fileURLToPath(new URL('../../bench/memory.mjs', import.meta.url))
interface Figures { start: number, peak: number, closed: number, later: number }
/** bench/memory.mjs's measurement in a process of its own (RSS in MiB). */
const measure = async (trim: boolean): Promise<Figures> => {
  const child = await run(process.execPath, [bench, '--child', JSON.stringify({ workers: 2, streams: 4, perStream: 32 * 2 ** 20, trim })])
  expect(child.status, child.stderr).toBe(0)
  return JSON.parse(child.stdout.trim().split('\n').at(-1) as string)
}

// Under the sanitizers (npm run test:sanitized) AddressSanitizer's allocator holds the memory, and
// glibc's malloc_trim cannot return it: the trim is glibc's, so is this test.
const sanitized = (process.env.NODE_MSQUIC_ADDON ?? '').includes('sanitize')

describe('memory after bulk transfers', () => {
  it.skipIf(sanitized)('should give the high-water mark back once the last connection closed', async () => {
    const kept = await measure(false)
    const trimmed = await measure(true)
    console.log(`bulk in worker threads, RSS MiB: idle trim off ${JSON.stringify(kept)}; default ${JSON.stringify(trimmed)}`)
    // The transfer really raised the mark, and without a trim most of it stays.
    expect(kept.peak - kept.start).toBeGreaterThan(100)
    expect(kept.later - kept.start).toBeGreaterThan((kept.peak - kept.start) / 2)
    // With the default idle trim, most of it goes back.
    expect(trimmed.later - trimmed.start).toBeLessThan((trimmed.peak - trimmed.start) / 2)
  }, 120_000)

  it('should check setIdleTrim() and trim on demand', () => {
    expect(typeof trimMemory()).toBe('boolean')
    for (const bad of [-1, 1.5, 'soon', null]) expect(() => setIdleTrim(bad as never)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_(OUT_OF_RANGE|INVALID_ARG_VALUE)$/) }))
    setIdleTrim(false)
    setIdleTrim(1000)
  })
})
