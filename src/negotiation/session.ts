/**
 * The Duplex driver of the multistream-select engine: one negotiation over any Node Duplex. It
 * reads what the stream has into the engine's machine, writes what the machine sends, and hands
 * the bytes past the last negotiation message back with unshift(), in the same turn as the read
 * (so the stream never emits 'end' while they wait): the application reads them next, in order.
 * It enforces the deadline and the AbortSignal, and every listener it adds is removed when it ends.
 */
import type { Duplex } from 'node:stream'
import { NegotiationError, NegotiationErrorCode, NegotiationResetCode, QuicErrorCode, invalidArgType, invalidArgValue, type QuicErrorOptions } from '../errors.js'
import { NEGOTIATION_TIMEOUT } from './defaults.js'
import type { NegotiationMachine } from './engine.js'

/** Options common to both sides of a negotiation. */
export interface NegotiationOptions {
  /** Gives up: the stream is reset and the promise rejects (`ERR_NEGOTIATION_TIMEOUT` for an AbortSignal.timeout(), else `ERR_QUIC_ABORTED`). */
  signal?: AbortSignal
  /** Milliseconds the whole negotiation may take, then `ERR_NEGOTIATION_TIMEOUT`. Default 10000; Infinity for none. */
  timeout?: number
}

function peerError (code: NegotiationError['code'], message: string, options: QuicErrorOptions = {}): NegotiationError {
  return new NegotiationError(code, message, { ...options, phase: 'peer' })
}

/** The error for an aborted negotiation: a timeout if the signal is an AbortSignal.timeout(). */
export function abortError (signal: AbortSignal): NegotiationError {
  const reason: unknown = signal.reason
  return reason instanceof Error && reason.name === 'TimeoutError'
    ? peerError(NegotiationErrorCode.TIMEOUT, 'Protocol negotiation timed out', { cause: reason })
    : peerError(QuicErrorCode.ABORTED, 'Protocol negotiation was aborted', { cause: reason })
}

/** The error for a stream closed (destroyed) before negotiation completed. */
export function streamClosed (stream: Duplex): NegotiationError {
  return peerError(NegotiationErrorCode.FAILED, 'The stream closed during protocol negotiation', { cause: stream.errored ?? undefined })
}

/**
 * The application code a stream failed in negotiation is reset with: libp2p's
 * RESOURCE_LIMIT_EXCEEDED for a busy refusal, PROTOCOL_NEGOTIATION_FAILED for anything else.
 */
export function negotiationResetCode (error: unknown): NegotiationResetCode {
  const busy = error instanceof NegotiationError && error.code === NegotiationErrorCode.BUSY
  return busy ? NegotiationResetCode.RESOURCE_LIMIT_EXCEEDED : NegotiationResetCode.PROTOCOL_NEGOTIATION_FAILED
}

/**
 * Resets both directions of a failed stream with the code for `error`, when the stream can carry
 * one (a QuicStream's reset() and stopSending()), then destroys it. The error is given to
 * destroy() only when `report` is set: a failure is reported once, by a rejected promise or by
 * the stream's 'error' event, never both.
 */
export function resetStream (stream: Duplex, error: unknown, report = false): void {
  const code = negotiationResetCode(error)
  const resettable = stream as Duplex & { reset?: (code: bigint) => void, stopSending?: (code: bigint) => void }
  if (!stream.destroyed && typeof resettable.reset === 'function' && typeof resettable.stopSending === 'function') {
    resettable.reset(code)
    resettable.stopSending(code)
  }
  stream.destroy(report ? error as Error : undefined)
}

/**
 * Misuse checks shared by both sides; they throw before the stream is touched. `reading`: the
 * session will read the stream, so nothing else may be reading it (it would take the bytes).
 */
export function checkStream (stream: Duplex, options: NegotiationOptions, reading: boolean): void {
  if (typeof stream?.read !== 'function' || typeof stream.write !== 'function') throw invalidArgType('stream', 'a Duplex', stream)
  if (stream.readableObjectMode || stream.readableEncoding !== null) throw invalidArgValue('stream', 'must read bytes (no object mode, no encoding)', stream)
  if (reading && stream.readableFlowing === true) throw invalidArgValue('stream', 'must not be flowing (read) yet', stream)
  const timeout = options.timeout ?? NEGOTIATION_TIMEOUT
  if (typeof timeout !== 'number' || !(timeout > 0)) throw invalidArgValue('timeout', 'must be a positive number of milliseconds', timeout, true)
}

/**
 * One negotiation on a Duplex, for selectProtocol() and acceptProtocol(): run() drives a machine
 * of the engine to its end. Its listeners stay on from start to end, so a stream error in between
 * is never unheard.
 */
export class NegotiationSession {
  readonly #stream: Duplex
  readonly #signal?: AbortSignal
  readonly #timer?: NodeJS.Timeout
  #failure: NegotiationError | undefined
  #ended: boolean
  #wake: (() => void) | undefined
  #done = false

  constructor (stream: Duplex, options: NegotiationOptions) {
    this.#stream = stream
    this.#ended = stream.readableEnded
    for (const [event, listener] of this.#listeners) stream.on(event, listener)
    const timeout = options.timeout ?? NEGOTIATION_TIMEOUT
    if (timeout !== Infinity) {
      this.#timer = setTimeout(() => this.#stop(peerError(NegotiationErrorCode.TIMEOUT, `Protocol negotiation took longer than ${timeout} ms`)), timeout)
    }
    this.#signal = options.signal
    this.#signal?.addEventListener('abort', this.#onAbort)
    if (this.#signal?.aborted === true) this.#onAbort()
    if (stream.destroyed) this.#onClose()
  }

  readonly #onAbort = (): void => {
    this.#stop(abortError(this.#signal as AbortSignal))
  }

  readonly #onEnd = (): void => {
    this.#ended = true
    this.#wakeUp()
  }

  readonly #onError = (error: Error & { errorCode?: number | bigint }): void => {
    this.#stop(peerError(NegotiationErrorCode.FAILED, `The stream failed during protocol negotiation: ${error.message}`, { cause: error, errorCode: error.errorCode }))
  }

  readonly #onClose = (): void => {
    this.#stop(streamClosed(this.#stream))
  }

  readonly #wakeUp = (): void => {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  readonly #listeners: Array<[string, (...args: any[]) => void]> = [
    ['readable', this.#wakeUp], ['end', this.#onEnd], ['error', this.#onError], ['close', this.#onClose]
  ]

  #stop (error: NegotiationError): void {
    this.#failure ??= error
    this.#wakeUp()
  }

  /**
   * Writes `first` (if given), then feeds what the stream receives to `machine` and writes what it
   * answers, until the sides agree: resolves with the protocol, the stream the caller's again. On
   * failure the stream is reset and destroyed, and the promise rejects.
   */
  async run (machine: NegotiationMachine, first?: Uint8Array): Promise<string> {
    const stream = this.#stream
    try {
      if (first !== undefined) stream.write(first)
      while (true) {
        if (this.#failure !== undefined) throw this.#failure
        const chunk: Uint8Array | null = stream.read()
        if (chunk !== null) {
          const step = machine.push(chunk)
          if (step.send !== undefined) stream.write(step.send)
          if (step.protocol === undefined) continue
          const rest = step.rest as Uint8Array
          if (rest.length > 0) stream.unshift(rest)
          this.#finish()
          return step.protocol
        }
        if (this.#ended) throw machine.end()
        await new Promise<void>(resolve => { this.#wake = resolve })
      }
    } catch (error) {
      this.#finish()
      resetStream(stream, error)
      throw error
    }
  }

  // The stream is the application's again, with no listener of ours left.
  #finish (): void {
    if (this.#done) return
    this.#done = true
    clearTimeout(this.#timer)
    this.#signal?.removeEventListener('abort', this.#onAbort)
    for (const [event, listener] of this.#listeners) this.#stream.off(event, listener)
  }
}
