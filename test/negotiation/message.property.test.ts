/**
 * Property tests of the message decoder (fast-check): whatever arrives, in whatever chunks, it
 * returns messages, asks for more, or throws its one documented error, and it always terminates.
 */
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { NegotiationError, QuicErrorCode } from '../../src/index.js'
import { MAX_PROTOCOL_ID_LENGTH, MessageDecoder, encodeMessages } from '../../src/negotiation/index.js'

/** Splits `bytes` at the given cut points (any numbers; taken modulo the length). */
function split (bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map(cut => cut % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Uint8Array[] = []
  let start = 0
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point))
    start = point
  }
  return chunks
}

/**
 * Feeds chunks and drains messages after each. Every next() that returns a message consumes bytes,
 * so more calls than bytes would mean a loop.
 */
function feed (chunks: Uint8Array[]): { messages: string[], error?: unknown, rest: Uint8Array } {
  const decoder = new MessageDecoder()
  const messages: string[] = []
  const budget = chunks.reduce((total, chunk) => total + chunk.length, 0) + chunks.length
  let calls = 0
  try {
    for (const chunk of chunks) {
      decoder.push(chunk)
      for (let message = decoder.next(); message !== undefined; message = decoder.next()) {
        messages.push(message)
        if (++calls > budget) throw new Error('the decoder does not make progress')
      }
    }
  } catch (error) {
    return { messages, error, rest: new Uint8Array(0) }
  }
  return { messages, rest: decoder.take() }
}

const protocolId = fc.string({ unit: 'binary', maxLength: 300 })
  .filter(id => Buffer.byteLength(id) <= MAX_PROTOCOL_ID_LENGTH)
const cuts = fc.array(fc.nat(), { maxLength: 12 })

describe('message decoder properties', () => {
  it('should only ever throw ERR_NEGOTIATION_PROTOCOL on arbitrary bytes', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 16 }), chunks => {
      const { error } = feed(chunks)
      if (error !== undefined) {
        expect(error).toBeInstanceOf(NegotiationError)
        expect((error as NegotiationError).code).toBe(QuicErrorCode.NEGOTIATION_PROTOCOL)
      }
    }), { numRuns: 2000 })
  })

  it('should decode what was encoded, however it is split', () => {
    fc.assert(fc.property(fc.array(protocolId, { maxLength: 8 }), cuts, (ids, points) => {
      const { messages, error, rest } = feed(split(encodeMessages(ids), points))
      expect(error).toBeUndefined()
      expect(messages).toEqual(ids)
      expect(rest.length).toBe(0)
    }), { numRuns: 500 })
  })

  it('should treat any prefix of valid messages as "need more", never as an error', () => {
    fc.assert(fc.property(fc.array(protocolId, { minLength: 1, maxLength: 4 }), fc.nat(), cuts, (ids, at, points) => {
      const bytes = encodeMessages(ids)
      const prefix = bytes.subarray(0, at % bytes.length)
      const { messages, error, rest } = feed(split(prefix, points))
      expect(error).toBeUndefined()
      // The complete messages come out; the bytes of the incomplete one wait.
      expect(messages).toEqual(ids.slice(0, messages.length))
      expect(messages.length).toBeLessThan(ids.length)
      expect(Buffer.from(rest)).toEqual(Buffer.from(prefix.subarray(encodeMessages(messages).length)))
    }), { numRuns: 500 })
  })

  it('should leave the bytes after a message untouched, whatever they are', () => {
    fc.assert(fc.property(protocolId, fc.uint8Array({ maxLength: 32 }), (id, after) => {
      const decoder = new MessageDecoder()
      decoder.push(Buffer.concat([encodeMessages([id]), after]))
      expect(decoder.next()).toBe(id)
      expect(Buffer.from(decoder.take())).toEqual(Buffer.from(after))
    }), { numRuns: 300 })
  })
})
