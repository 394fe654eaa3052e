/**
 * One error base for every layer (CodedError), branded so that `instanceof` holds across two
 * copies of the package in one process: the sources and the built dist/ here are two module
 * instances, as two versions of the package in node_modules would be.
 */
import { describe, expect, it } from 'vitest'
import { CodedError, NegotiationError, QuicError, QuicErrorCode } from '../src/index.js'
import { LimitsError, LimitsErrorCode } from '../src/limits/index.js'
import { Libp2pQuicError, Libp2pQuicErrorCode } from '../src/libp2p/index.js'

describe('errors', () => {
  it('share one base, with a code, across layers', () => {
    const errors = [
      new QuicError(QuicErrorCode.CLOSED, 'closed'),
      new NegotiationError(QuicErrorCode.NEGOTIATION_BUSY, 'busy'),
      new LimitsError(LimitsErrorCode.CLOSED, 'closed'),
      new Libp2pQuicError(Libp2pQuicErrorCode.BUSY, 'busy')
    ]
    for (const error of errors) {
      expect(error).toBeInstanceOf(Error)
      expect(error).toBeInstanceOf(CodedError)
      expect(typeof error.code).toBe('string')
    }
    expect(errors[1]).toBeInstanceOf(QuicError)
    expect(errors[0]).not.toBeInstanceOf(NegotiationError)
    expect(errors[2]).not.toBeInstanceOf(QuicError)
    expect(errors.map(e => e.name)).toEqual(['QuicError', 'NegotiationError', 'LimitsError', 'Libp2pQuicError'])
  })

  it('are recognised by instanceof across copies of the package', async () => {
    const other = await import('../dist/errors.js') as typeof import('../src/errors.js')
    expect(other.QuicError).not.toBe(QuicError)
    const foreign = new other.QuicError(other.QuicErrorCode.CLOSED, 'from the other copy')
    expect(foreign).toBeInstanceOf(QuicError)
    expect(foreign).toBeInstanceOf(CodedError)
    expect(foreign).not.toBeInstanceOf(NegotiationError)
    expect(new QuicError(QuicErrorCode.CLOSED, 'ours')).toBeInstanceOf(other.QuicError)
  })
})
