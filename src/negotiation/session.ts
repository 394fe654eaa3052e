/**
 * One negotiation over a Node Duplex: reads exactly the negotiation messages (bytes read past the
 * last one go back with unshift(), so the application reads them next, in order), writes answers,
 * and enforces the deadline and the AbortSignal. Every listener it adds is removed when it ends.
 */
import type { Duplex } from 'node:stream'
import { NegotiationError, NegotiationResetCode, QuicErrorCode, invalidArgType, invalidArgValue, type QuicErrorOptions } from '../errors.js'
import { MessageDecoder } from './message.js'

/** The default limit for a whole negotiation, in milliseconds (js-libp2p's default as well). */
export const NEGOTIATION_TIMEOUT = 10_000

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

/** The error for a peer that broke the exchange. */
export function protocolError (message: string): NegotiationError {
  return peerError(QuicErrorCode.NEGOTIATION_PROTOCOL, message)
}

/** The error for an unexpected message, quoting (the start of) what was received. */
export function unexpected (what: string, received: string): NegotiationError {
  const quoted = JSON.stringify(received.length > 64 ? received.slice(0, 64) + '…' : received)
  return protocolError(`Unexpected multistream-select message: ${what}, received ${quoted}`)
}

/** The error for an aborted negotiation: a timeout if the signal is an AbortSignal.timeout(). */
export function abortError (signal: AbortSignal): NegotiationError {
  const reason: unknown = signal.reason
  return reason instanceof Error && reason.name === 'TimeoutError'
    ? peerError(QuicErrorCode.NEGOTIATION_TIMEOUT, 'Protocol negotiation timed out', { cause: reason })
    : peerError(QuicErrorCode.ABORTED, 'Protocol negotiation was aborted', { cause: reason })
}

/** The error for a stream closed (destroyed) before negotiation completed. */
export function streamClosed (stream: Duplex): NegotiationError {
  return peerError(QuicErrorCode.NEGOTIATION_FAILED, 'The stream closed during protocol negotiation', { cause: stream.errored ?? undefined })
}

/** The error for a proposal refused by `na` with nothing left to propose. */
export function noCommonProtocol (message: string): NegotiationError {
  return peerError(QuicErrorCode.NEGOTIATION_FAILED, message)
}

/**
 * Resets both directions of a failed stream with the code for `error`, when the stream can carry
 * one (a QuicStream's reset() and stopSending()), then destroys it. The error is given to
 * destroy() only when `report` is set: a failure is reported once, by a rejected promise or by
 * the stream's 'error' event, never both.
 */
export function resetStream (stream: Duplex, error: unknown, report = false): void {
  const busy = error instanceof NegotiationError && error.code === QuicErrorCode.NEGOTIATION_BUSY
  const code = busy ? NegotiationResetCode.RESOURCE_LIMIT_EXCEEDED : NegotiationResetCode.PROTOCOL_NEGOTIATION_FAILED
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
 * The stream's side of one negotiation, for selectProtocol() and acceptProtocol(): read() and
 * write() while it lasts, then finish() (success: the stream is the caller's again) or fail().
 * Its listeners stay on from start to end, so a stream error in between is never unheard.
 */
export class NegotiationSession {
  readonly #stream: Duplex
  readonly #decoder = new MessageDecoder()
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
      this.#timer = setTimeout(() => this.#stop(peerError(QuicErrorCode.NEGOTIATION_TIMEOUT, `Protocol negotiation took longer than ${timeout} ms`)), timeout)
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
    this.#stop(peerError(QuicErrorCode.NEGOTIATION_FAILED, `The stream failed during protocol negotiation: ${error.message}`, { cause: error, errorCode: error.errorCode }))
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
   * The next message. Bytes read past it are given back to the stream at once, in the same turn
   * as the read, so the stream never emits 'end' while they wait.
   */
  async read (): Promise<string> {
    while (true) {
      if (this.#failure !== undefined) throw this.#failure
      const chunk: Uint8Array | null = this.#stream.read()
      if (chunk !== null) {
        this.#decoder.push(chunk)
        const message = this.#decoder.next()
        if (message === undefined) continue
        const rest = this.#decoder.take()
        if (rest.length > 0) this.#stream.unshift(rest)
        return message
      }
      if (this.#ended) {
        const partial = this.#decoder.bufferedLength > 0 ? ' in the middle of a message' : ''
        throw protocolError(`The peer ended the stream${partial} before protocol negotiation completed`)
      }
      await new Promise<void>(resolve => { this.#wake = resolve })
    }
  }

  /** Whether the peer sent more bytes after the last message read (before hearing our answer). */
  get hasMore (): boolean {
    return this.#stream.readableLength > 0
  }

  /** Writes bytes; a failure arrives as the stream's 'error', which the next read() reports. */
  write (bytes: Uint8Array): void {
    this.#stream.write(bytes)
  }

  /** Ends the session: the stream is the application's again, with no listener of ours left. */
  finish (): void {
    if (this.#done) return
    this.#done = true
    clearTimeout(this.#timer)
    this.#signal?.removeEventListener('abort', this.#onAbort)
    for (const [event, listener] of this.#listeners) this.#stream.off(event, listener)
  }

  /** Ends the session after a failure: the stream is reset and destroyed; returns `error`. */
  fail (error: unknown): unknown {
    this.finish()
    resetStream(this.#stream, error)
    return error
  }
}
