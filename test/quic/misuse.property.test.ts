/**
 * The whole public API driven with arbitrary values (fast-check) in a child process: wrong types,
 * NaN, huge numbers and strings, throwing getters, corrupted handles. Every call must answer with a
 * value or an error that has a stable `code`, start nothing it refused, leave nothing open, and the
 * process must neither crash nor hang.
 */
import { fileURLToPath } from 'node:url'
import { describe, it, expect } from 'vitest'
import { run } from '../child.js'

const fixture = fileURLToPath(new URL('./fixtures/misuse.mjs', import.meta.url))

describe('misuse, property-based', () => {
  for (const seed of [1, 2]) {
    it(`should answer arbitrary arguments with coded errors and start nothing (seed ${seed})`, async () => {
      const child = await run(process.execPath, [fixture, String(seed), '250'], { timeout: 240_000 })
      expect(child.signal).toBeNull()
      expect(child.stderr).toBe('')
      expect(child.status).toBe(0)
      const report = JSON.parse(child.stdout.trim().split('\n').pop() as string)
      expect(report.failures).toEqual([])
      expect(report.leftOpen).toBe(0)
      expect(report.refused).toBeGreaterThan(100)
      console.log(`misuse seed ${seed}: ${report.refused} calls refused with codes, ${report.made} accepted and undone`)
    })
  }
})
