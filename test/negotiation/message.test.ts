import { describe, it, expect } from 'vitest'
import { QuicErrorCode } from '../../src/index.js'
import { MAX_PROTOCOL_ID_LENGTH, MULTISTREAM_PROTOCOL_ID, MessageDecoder, checkProtocols, encodeMessage, encodeMessages, encodeProtocolList } from '../../src/negotiation/index.js'
import { hex } from './helpers.js'

function decodeAll (...chunks: number[][]): string[] {
  const decoder = new MessageDecoder()
  const messages: string[] = []
  for (const chunk of chunks) {
    decoder.push(Uint8Array.from(chunk))
    for (let message = decoder.next(); message !== undefined; message = decoder.next()) messages.push(message)
  }
  return messages
}

const malformed = { name: 'NegotiationError', code: QuicErrorCode.NEGOTIATION_PROTOCOL, phase: 'peer' }

describe('multistream-select messages', () => {
  it('should encode the wire bytes libp2p specifies', () => {
    expect(hex(encodeMessage('na'))).toBe('036e610a')
    expect(hex(encodeMessage('ls'))).toBe('036c730a')
    expect(hex(encodeMessage(MULTISTREAM_PROTOCOL_ID))).toBe('13' + hex(Buffer.from('/multistream/1.0.0\n')))
    expect(hex(encodeMessages([MULTISTREAM_PROTOCOL_ID, '/ipfs/kad/1.0.0']))).toBe(
      '13' + hex(Buffer.from('/multistream/1.0.0\n')) + '10' + hex(Buffer.from('/ipfs/kad/1.0.0\n')))
    // ls: one message holding one message per protocol, then a newline.
    expect(hex(encodeProtocolList(['/a', '/bc']))).toBe('0a' + '032f610a' + '042f62630a' + '0a')
    // A two-byte length: 200 bytes of id and the newline is 201 = 0xc9 0x01.
    expect(hex(encodeMessage('x'.repeat(200)).subarray(0, 2))).toBe('c901')
  })

  it('should decode messages split anywhere, and keep what follows', () => {
    const decoder = new MessageDecoder()
    decoder.push(Uint8Array.of(0x03, 0x6e))
    expect(decoder.next()).toBeUndefined()
    decoder.push(Uint8Array.of(0x61, 0x0a, 0x01, 0x0a, 0xff))
    expect(decoder.next()).toBe('na')
    expect(decoder.next()).toBe('') // "\n": an empty id (answered na by a listener)
    expect(decoder.next()).toBeUndefined() // 0xff: the first byte of a longer prefix
    expect(hex(decoder.take())).toBe('ff')
    expect(decoder.bufferedLength).toBe(0)
    expect(decodeAll([0xc9], [0x01, ...Buffer.from('y'.repeat(200) + '\n')])).toEqual(['y'.repeat(200)])
  })

  it('should take a protocol id of 1,024 bytes and refuse one of 1,025', () => {
    const longest = '/' + 'x'.repeat(MAX_PROTOCOL_ID_LENGTH - 1)
    expect(decodeAll([...encodeMessage(longest)])).toEqual([longest])
    const decoder = new MessageDecoder()
    // Refused from its length prefix alone, before the bytes arrive.
    decoder.push(encodeMessage(longest + 'x').subarray(0, 2))
    expect(() => decoder.next()).toThrow(expect.objectContaining({ ...malformed, message: expect.stringContaining('1026 bytes is longer than 1025') }))
  })

  it('should refuse malformed messages with ERR_NEGOTIATION_PROTOCOL', () => {
    const cases: Array<[string, number[]]> = [
      ['longer than 2 bytes', [0x80, 0x80, 0x01]],
      ['not minimally encoded', [0x83, 0x00]],
      ['an empty message', [0x00]],
      ['does not end with a newline', [0x03, 0x6e, 0x61, 0x62]],
      ['not valid UTF-8', [0x03, 0xc3, 0x28, 0x0a]],
      ['not valid UTF-8', [0x04, 0xed, 0xa0, 0x80, 0x0a]] // an encoded lone surrogate
    ]
    for (const [reason, bytes] of cases) {
      expect(() => decodeAll(bytes), reason).toThrow(expect.objectContaining({ ...malformed, message: expect.stringContaining(reason) }))
    }
  })

  it('should check protocol ids before using them', () => {
    expect(checkProtocols('/a')).toEqual(['/a'])
    expect(checkProtocols(['/a', '/b'])).toEqual(['/a', '/b'])
    expect(() => checkProtocols([])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => checkProtocols('')).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => checkProtocols('/' + 'é'.repeat(512))).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => checkProtocols(['/a\n/b'])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    for (const reserved of ['na', 'ls', MULTISTREAM_PROTOCOL_ID]) {
      expect(() => checkProtocols(reserved)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    }
    expect(() => checkProtocols([42 as unknown as string])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
  })
})
