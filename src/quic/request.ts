/**
 * The request/response path: one small message each way per stream, for RPCs. The client sends
 * its body with the FIN in the same native call that opens the stream; each side's message is
 * collected natively to its FIN (up to a limit) and reaches JS as one event, with no Duplex, no
 * per-chunk events and no receive budget round trips. Both ends are adapters over StreamCore.
 * JS thread only.
 */
import { checkOptions, checkSignal, invalidArgType, invalidArgValue, optionalInteger } from '../args.js'
import { QuicError, QuicErrorCode, abortedError } from '../errors.js'
import { StreamCode } from '../codes.js'
import { SendResult } from '../native.js'
import type { StreamCore, StreamSink } from './stream-core.js'

/** Default cap on a request's body (`maxRequestBytes`) and on a reply (`maxResponseBytes`): 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
/** The largest cap either side takes: 64 MiB (a message is held whole in memory). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024
/** Default number of requests a connection serves at once (its bidirectional stream credit). */
export const DEFAULT_REQUEST_CONCURRENCY = 100

/** Application error codes the request path resets streams with (values: src/codes.ts). */
export const RequestResetCode = {
  /** A request or reply outgrew its cap (both directions are aborted). */
  MESSAGE_TOO_LARGE: StreamCode.MESSAGE_TOO_LARGE,
  /** The server's handler threw (or rejected) an error without an `errorCode` of its own. */
  HANDLER_FAILED: StreamCode.HANDLER_FAILED,
  /** The client gave up (its signal or timeout) before the reply came. */
  CANCELLED: StreamCode.CANCELLED
} as const

/** Options of `connection.request()`. */
export interface RequestOptions {
  /** Gives up waiting for the reply (the stream is aborted with `RequestResetCode.CANCELLED`). */
  signal?: AbortSignal
  /** Milliseconds to wait for the whole reply; rejects with ERR_QUIC_TIMEOUT. Default: no limit. */
  timeout?: number
  /** The largest reply accepted, in bytes (1 to 64 MiB). Default 1 MiB. */
  maxResponseBytes?: number
}

/** Options of `serveRequests()`. */
export interface ServeRequestsOptions {
  /** The largest request body accepted, in bytes (1 to 64 MiB); beyond it the stream is aborted. Default 1 MiB. */
  maxRequestBytes?: number
  /** Requests handled at once; more wait inside QUIC's stream credit (1 to 65535). Default 100. */
  concurrency?: number
}

/**
 * The connection requests are served on, as this module sees it: it reports handler failures on
 * it. (A QuicConnection; the connection module names the public types with it, so that this one
 * needs no import of it.)
 */
export interface RequestHost {
  emit: (event: 'requestError', error: unknown, info: RequestInfo<any>) => boolean
}

/** What a request handler learns besides the body. */
export interface RequestInfo<Connection = RequestHost> {
  connection: Connection
  /** The QUIC stream id the request came on. */
  streamId: number | null
  /**
   * Whether some of the request came as 0-RTT data (sent before the handshake completed, with
   * `sessionTickets: '0rtt'`): it could be a replay, so answer it only if answering twice is harmless.
   */
  earlyData: boolean
  /**
   * Aborts when the client gives up before the answer (it cancelled, timed out or went away; the
   * reason is the stream's error). The request keeps its stream credit, and its place among the
   * `concurrency` running, until the handler returns: stop work here to free them sooner.
   */
  readonly signal: AbortSignal
}

/** Answers one request: the reply body (or a promise of it). A thrown error resets the stream. */
export type RequestHandler<Connection = RequestHost> = (body: Buffer, info: RequestInfo<Connection>) => Uint8Array | string | Promise<Uint8Array | string>

const checkMessageCap = (name: string, value: unknown): number => optionalInteger(name, value, { min: 1, max: MAX_MESSAGE_BYTES }, DEFAULT_MAX_MESSAGE_BYTES)

function toBytes (name: string, value: unknown): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value)
  if (value instanceof Uint8Array) return value
  throw invalidArgType(name, 'a Uint8Array or a string', value)
}

/**
 * @internal The client side: validates, opens the stream with `open(body, cap)` and waits for the
 * reply. Everything is checked before anything native starts.
 */
export async function sendRequest (body: unknown, options: RequestOptions, open: (body: Uint8Array, cap: number) => StreamCore): Promise<Buffer> {
  const { timeout } = checkOptions(options)
  const signal = checkSignal(options.signal)
  const bytes = toBytes('body', body)
  const cap = checkMessageCap('maxResponseBytes', options.maxResponseBytes)
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0))) throw invalidArgValue('timeout', 'must be a positive number of milliseconds', timeout, true)
  if (signal?.aborted === true) throw abortedError(signal, 'request')
  const call = new RequestCall(open(bytes, cap), cap)
  if (signal === undefined && timeout === undefined) return await call.reply
  let timer: NodeJS.Timeout | undefined
  const onAbort = (): void => { call.cancel(abortedError(signal as AbortSignal, 'request')) }
  signal?.addEventListener('abort', onAbort, { once: true })
  if (timeout !== undefined) {
    timer = setTimeout(() => call.cancel(new QuicError(QuicErrorCode.TIMEOUT, `The request timed out after ${timeout} ms`)), timeout)
  }
  try {
    return await call.reply
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}

// One request in flight: the core's sink until the reply (or the failure) settles it.
class RequestCall implements StreamSink {
  readonly reply: Promise<Buffer>
  readonly #core: StreamCore
  readonly #cap: number
  #resolve!: (reply: Buffer) => void
  #reject!: (error: Error) => void
  #settled = false

  constructor (core: StreamCore, cap: number) {
    this.#core = core
    this.#cap = cap
    this.reply = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject })
    core.attach(this)
  }

  cancel (error: Error): void {
    if (this.#settled) return
    this.#core.abort(RequestResetCode.CANCELLED)
    this.#fail(error)
  }

  onMessage (message: Buffer | undefined, tooLarge: boolean): void {
    if (this.#settled) return
    if (tooLarge || message === undefined) {
      this.#fail(new QuicError(QuicErrorCode.MESSAGE_TOO_LARGE, `The reply is larger than maxResponseBytes (${this.#cap})`, { errorCode: RequestResetCode.MESSAGE_TOO_LARGE }))
      return
    }
    this.#settled = true
    this.#resolve(message)
  }

  onReadError (error: QuicError): void {
    this.#fail(error)
  }

  onClosed (): void {
    if (this.#settled) return  // the usual case: the reply came first (no error is made)
    this.#fail(this.#core.readError ?? new QuicError(QuicErrorCode.STREAM_RESET, 'The stream ended before the reply', { direction: 'read' }))
  }

  // Collect mode delivers no chunks, and the body went out with its FIN in one call.
  onData (): boolean { return false }
  onEnd (): void {}
  onWritable (): void {}
  onWriteError (): void {}
  onAcknowledged (): void {}

  #fail (error: Error): void {
    if (this.#settled) return
    this.#settled = true
    this.#reject(error)
  }
}

/** @internal serveRequests()' arguments, checked before anything starts. */
export function checkServeRequests (handler: unknown, options: unknown): { maxRequestBytes: number, concurrency: number } {
  if (typeof handler !== 'function') throw invalidArgType('handler', 'a function', handler)
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
  const { maxRequestBytes, concurrency } = options as ServeRequestsOptions
  return {
    maxRequestBytes: checkMessageCap('maxRequestBytes', maxRequestBytes),
    concurrency: optionalInteger('concurrency', concurrency, { min: 1, max: 65535 }, DEFAULT_REQUEST_CONCURRENCY)
  }
}

/**
 * @internal The server side of one connection: one responder per request stream, at most
 * `concurrency` running. Requests beyond it normally wait inside QUIC's stream credit; only those
 * sent on credit granted before serveRequests() wait here, in order (bounded by that credit).
 */
export class RequestServer<C extends RequestHost> {
  readonly maxRequestBytes: number
  readonly concurrency: number
  readonly #connection: C
  readonly #handler: RequestHandler<C>
  #running = 0
  readonly #waiting: Array<[Responder<C>, Buffer]> = []

  constructor (connection: C, handler: RequestHandler<C>, options: ServeRequestsOptions) {
    const { maxRequestBytes, concurrency } = checkServeRequests(handler, options)
    this.maxRequestBytes = maxRequestBytes
    this.concurrency = concurrency
    this.#connection = connection
    this.#handler = handler
  }

  /** A request stream arrived, its body complete (the message event follows at once). */
  arrived (core: StreamCore): void {
    core.attach(new Responder<C>(core, this))
  }

  /** @internal A request's body is here: run its handler now, or once one finishes. */
  ready (responder: Responder<C>, body: Buffer): void {
    if (this.#running >= this.concurrency) {
      this.#waiting.push([responder, body])
      return
    }
    this.#running++
    responder.run(this.#connection, this.#handler, body)
  }

  /** @internal A handler finished (answered, failed, or its stream went away). */
  done (): void {
    this.#running--
    const next = this.#waiting.shift()
    if (next !== undefined) this.ready(...next)
  }
}

// Answers one request stream. The stream holds its stream credit until it closes, so at most
// `concurrency` handlers run at once per connection.
class Responder<C extends RequestHost> implements StreamSink {
  readonly #core: StreamCore
  readonly #server: RequestServer<C>
  #connection: C | undefined
  #answered = false
  #info: RequestInfo<C> | undefined
  // Made only for handlers that read `info.signal`.
  #cancel: AbortController | undefined

  constructor (core: StreamCore, server: RequestServer<C>) {
    this.#core = core
    this.#server = server
  }

  onMessage (message: Buffer | undefined): void {
    if (message !== undefined) this.#server.ready(this, message)  // never undefined for a request
  }

  run (connection: C, handler: RequestHandler<C>, body: Buffer): void {
    this.#connection = connection
    if (this.#core.closed) {  // waited, and the peer went away meanwhile
      this.#answer(true)
      return
    }
    let result: ReturnType<RequestHandler>
    try {
      result = handler(body, this.#requestInfo(connection))
    } catch (error) {
      this.#fail(error)
      return
    }
    if (result instanceof Promise) result.then(reply => { this.#reply(reply) }, error => { this.#fail(error) })
    else this.#reply(result)
  }

  #reply (reply: unknown): void {
    let bytes: Uint8Array
    try {
      bytes = toBytes('reply', reply)
    } catch (error) {
      this.#fail(error)
      return
    }
    if (!this.#answer(false)) return
    // The reply, its FIN and the end of the hold in one native call. Refused only when the peer
    // gave up meanwhile (its reset or the close is on its way).
    if (this.#core.send(bytes, true, true) === SendResult.Ended) {
      this.#core.taken()
      this.#core.abort(0)
    }
  }

  #fail (error: unknown): void {
    const code = (error as { errorCode?: unknown } | null)?.errorCode
    const valid = (typeof code === 'number' && Number.isSafeInteger(code) && code >= 0) || (typeof code === 'bigint' && code >= 0n && code < 2n ** 62n)
    if (this.#answer(true)) this.#core.abort(valid ? code : RequestResetCode.HANDLER_FAILED)
    const connection = this.#connection as C
    connection.emit('requestError', error, this.#requestInfo(connection))
  }

  #requestInfo (connection: C): RequestInfo<C> {
    if (this.#info !== undefined) return this.#info
    const signal = (): AbortSignal => this.#signal()
    this.#info = { connection, streamId: this.#core.id, earlyData: this.#core.earlyData, get signal () { return signal() } }
    return this.#info
  }

  #signal (): AbortSignal {
    if (this.#cancel === undefined) {
      this.#cancel = new AbortController()
      if (this.#core.closed || this.#core.read === 'reset') this.#cancelled()
    }
    return this.#cancel.signal
  }

  // The client gave up before the answer: tell the handler, if it listens.
  #cancelled (): void {
    if (this.#answered || this.#cancel === undefined || this.#cancel.signal.aborted) return
    this.#cancel.abort(this.#core.readError ?? this.#core.writeError ?? new QuicError(QuicErrorCode.STREAM_RESET, 'The client went away before the answer', { direction: 'read' }))
  }

  // The stream is answered once; from then on it closes natively when done (its credit returns),
  // and the next waiting request may run. `release`: end the hold now (else the caller's send does).
  #answer (release: boolean): boolean {
    if (this.#answered) return false
    this.#answered = true
    if (release || this.#core.closed) this.#core.taken()
    this.#server.done()
    return !this.#core.closed
  }

  onReadError (): void { this.#cancelled() }
  onWriteError (): void { this.#cancelled() }
  onClosed (): void { this.#cancelled() }
  onData (): boolean { return false }
  onEnd (): void {}
  onWritable (): void {}
  onAcknowledged (): void {}
}
