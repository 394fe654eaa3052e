/**
 * The codes and constants the addon defines natively agree with the TypeScript tables: the table of
 * wire codes (src/codes.ts) is the one place they are written down, and the addon sends one itself.
 */
import { describe, expect, it } from 'vitest'
import { StreamCode } from '../../src/codes.js'
import { RequestResetCode } from '../../src/index.js'
import { native } from '../../src/native.js'

describe('native constants', () => {
  it('the code the addon aborts oversized messages with is StreamCode.MESSAGE_TOO_LARGE', () => {
    expect(BigInt(native.constants.messageTooLargeCode)).toBe(StreamCode.MESSAGE_TOO_LARGE)
    expect(RequestResetCode.MESSAGE_TOO_LARGE).toBe(StreamCode.MESSAGE_TOO_LARGE)
  })

  it('no two names of one space share a value, and node-msquic\'s own codes stay out of libp2p\'s range', async () => {
    const { ConnectionCode } = await import('../../src/codes.js')
    for (const table of [StreamCode, ConnectionCode]) {
      const values = Object.values(table)
      expect(new Set(values).size).toBe(values.length)
    }
    for (const own of [StreamCode.MESSAGE_TOO_LARGE, StreamCode.HANDLER_FAILED, StreamCode.CANCELLED]) expect(own >= 0x2000n).toBe(true)
  })
})
