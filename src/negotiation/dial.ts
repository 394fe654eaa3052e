/**
 * dialProtocol(): the client side of bounded negotiation. It waits, in order, for a negotiation
 * slot of the connection (before any stream exists), for the peer's stream credit (inside QUIC
 * flow control, never failing for lack of it), and for the peer's answer. One deadline covers all
 * three, and a timeout says which one it expired in. JS thread only.
 */
import { NegotiationError, NegotiationErrorCode, NegotiationResetCode, QuicError, QuicErrorCode, invalidArgType, invalidArgValue, checkSignal } from '../errors.js'
import type { QuicConnection } from '../quic/connection.js'
import type { QuicStream } from '../quic/stream.js'
import { Semaphore, type Release } from '../limits/semaphore.js'
import { checkProtocols } from './message.js'
import type { NegotiationMetrics } from './metrics.js'
import { DEFAULT_NEGOTIATIONS_PER_CONNECTION, NEGOTIATION_TIMEOUT } from './defaults.js'
import { selectProtocol } from './select.js'

export interface DialProtocolOptions {
  signal?: AbortSignal
  /** Milliseconds for the whole dial: slot, credit and answer. Default 10,000; Infinity for none. */
  timeout?: number
  /**
   * Negotiations this side runs at once on the connection; more dials wait for a slot before
   * opening a stream. Default 8; Infinity for no limit. The latest value given applies.
   */
  maxNegotiationsPerConnection?: number
  /** Send data right after a single proposal (see selectProtocol). Default false. */
  lazy?: boolean
  /** Where to count the phases (`slot`, `credit`, `peer`) and outcomes. */
  metrics?: NegotiationMetrics
}

export interface DialedProtocol {
  /** The stream, now speaking `protocol`. */
  stream: QuicStream
  protocol: string
}

type Phase = 'slot' | 'credit' | 'peer'

const PHASE_TEXT: Record<Phase, string> = {
  slot: 'waiting for a negotiation slot',
  credit: 'waiting for the peer\'s stream credit',
  peer: 'waiting for the peer\'s answer'
}

// The dialer's negotiation slots of each connection.
const pools = new WeakMap<QuicConnection, Semaphore>()

/**
 * Opens a stream on `connection` and negotiates one of `protocols` (in order of preference) with
 * multistream-select. Rejects with a NegotiationError:
 * - `ERR_NEGOTIATION_BUSY` (retryable; `errorCode` is the peer's reset code) when the peer refused
 *   the stream as busy;
 * - `ERR_NEGOTIATION_FAILED` when the peer speaks none of `protocols`;
 * - `ERR_NEGOTIATION_TIMEOUT` when `timeout` passed, with `phase` saying where;
 * - `ERR_QUIC_ABORTED` when `signal` aborted, also with `phase`;
 * - `ERR_NEGOTIATION_PROTOCOL` when the peer broke the exchange.
 * A connection that closes rejects with its QuicError.
 */
export async function dialProtocol (connection: QuicConnection, protocols: string | readonly string[], options: DialProtocolOptions = {}): Promise<DialedProtocol> {
  if (typeof connection?.openStream !== 'function') throw invalidArgType('connection', 'a QuicConnection', connection)
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
  checkSignal(options.signal)
  const list = checkProtocols(protocols)
  const timeout = options.timeout ?? NEGOTIATION_TIMEOUT
  if (typeof timeout !== 'number' || !(timeout > 0)) throw invalidArgValue('timeout', 'must be a positive number of milliseconds', timeout, true)
  const pool = poolFor(connection, options.maxNegotiationsPerConnection)
  const metrics = options.metrics

  const controller = new AbortController()
  let timedOut = false
  const timer = timeout === Infinity ? undefined : setTimeout(() => { timedOut = true; controller.abort() }, timeout)
  const onAbort = (): void => { controller.abort() }
  options.signal?.addEventListener('abort', onAbort, { once: true })
  if (options.signal?.aborted === true) controller.abort()
  const signal = controller.signal

  let phase = 'slot' as Phase
  let mark = performance.now()
  const enter = (next: Phase): void => {
    const now = performance.now()
    metrics?.observe(phase, now - mark)
    mark = now
    phase = next
  }
  let release: Release | undefined
  let stream: QuicStream | undefined
  try {
    if (pool !== undefined) release = await pool.acquire(signal)
    enter('credit')
    stream = await connection.openStream({ signal })
    enter('peer')
    metrics?.started()
    const protocol = await selectProtocol(stream, list, { signal, timeout: Infinity, lazy: options.lazy })
    metrics?.observe('peer', performance.now() - mark)
    metrics?.finished('completed')
    return { stream, protocol }
  } catch (cause) {
    const error = failure(cause, phase, timedOut, timeout)
    metrics?.observe(phase, performance.now() - mark)
    if (phase === 'peer') metrics?.finished(outcome(error))
    else metrics?.count(outcome(error))
    if (stream !== undefined && !stream.destroyed) stream.destroy()
    throw error
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
    release?.()
  }
}

function poolFor (connection: QuicConnection, max: number | undefined): Semaphore | undefined {
  const capacity = max ?? DEFAULT_NEGOTIATIONS_PER_CONNECTION
  if (capacity !== Infinity && (!Number.isInteger(capacity) || capacity < 1)) {
    throw invalidArgValue('maxNegotiationsPerConnection', 'must be a positive integer or Infinity', capacity, true)
  }
  let pool = pools.get(connection)
  if (pool === undefined) {
    pool = new Semaphore(capacity)
    pools.set(connection, pool)
  } else if (pool.capacity !== capacity) {
    pool.capacity = capacity
  }
  return capacity === Infinity ? undefined : pool
}

function failure (cause: unknown, phase: Phase, timedOut: boolean, timeout: number): Error {
  if (timedOut) {
    return new NegotiationError(NegotiationErrorCode.TIMEOUT, `Protocol negotiation timed out after ${timeout} ms, ${PHASE_TEXT[phase]}`, { phase, cause })
  }
  if (isAbort(cause)) {
    return new NegotiationError(QuicErrorCode.ABORTED, `Protocol negotiation was aborted, ${PHASE_TEXT[phase]}`, { phase, cause })
  }
  const code = resetCode(cause)
  if (code === NegotiationResetCode.RESOURCE_LIMIT_EXCEEDED) {
    return new NegotiationError(NegotiationErrorCode.BUSY, 'The peer is busy negotiating other streams; try again later', { phase: 'peer', retryable: true, errorCode: code, cause })
  }
  return cause as Error
}

function isAbort (error: unknown): boolean {
  return error === undefined || (error instanceof Error && error.name === 'AbortError') ||
    (error instanceof QuicError && error.code === QuicErrorCode.ABORTED)
}

// The application error code of a peer's reset, wherever it sits in the cause chain.
function resetCode (error: unknown): bigint | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof QuicError && e.errorCode !== undefined) return BigInt(e.errorCode)
  }
  return undefined
}

function outcome (error: Error): 'busy' | 'timeout' | 'failed' {
  if (!(error instanceof QuicError)) return 'failed'
  if (error.code === NegotiationErrorCode.BUSY) return 'busy'
  return error.code === NegotiationErrorCode.TIMEOUT ? 'timeout' : 'failed'
}
