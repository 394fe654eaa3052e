/**
 * QuicStream: one QUIC stream as a node:stream Duplex, a thin adapter over its StreamCore (which
 * holds the received bytes, the budget and the send window; nothing is buffered twice). Received
 * bytes are pulled from the core only when the reader wants them, so a reader that stops reading
 * holds the peer back through QUIC flow control. Writes complete at once while MsQuic's ideal send
 * buffer has room (the native send window), and wait for room beyond that. JS thread only.
 *
 * Lifetime (docs/lifecycle.md, "After an error"): QUIC fails the directions one at a time (a peer's
 * RESET_STREAM fails our read side, its STOP_SENDING our write side), but Node code is written
 * against one rule: after 'error' the stream is destroyed and 'close' follows. So by default
 * (`autoDestroy: true`) a failed direction ends the stream: the other direction is released (reset,
 * or stopped) and the peer gets its stream credit back, whatever the handlers do. One exception
 * keeps HTTP/3's early response: on a stream this side opened, the peer's STOP_SENDING ends only
 * our request; its answer is still read to the end, then the stream closes. `autoDestroy: false`
 * keeps each direction independent until the app ends it.
 */
import { Duplex, type DuplexOptions } from 'node:stream'
import { invalidArgType, invalidState } from '../args.js'
import { QuicError, QuicErrorCode, closedError } from '../errors.js'
import { SendResult, isDispatching, runtime } from '../native.js'
import { checkErrorCode } from './error-code.js'
import { StreamCore, elsewhere, isCoreSnapshot, type CoreSnapshot, type PrefixReader } from './stream-core.js'
import { kCore, kHandOver, kSettle } from './symbols.js'

// MsQuic's initial ideal send buffer size; the native send window follows its updates.
const INITIAL_SEND_WINDOW = 128 * 1024

// Streams handed to the app in this turn of the event loop; one setImmediate settles them all.
const handOvers: QuicStream[] = []
function settleHandOvers (): void {
  for (const stream of handOvers.splice(0)) stream[kHandOver](true)
}

/**
 * A stream on its way to another thread: a plain object, to send with `postMessage()` and pass to
 * `QuicStream.adopt()` there. It can be adopted once.
 */
export interface QuicStreamHandle {
  kind: 'node-msquic/stream'
  id: number
  /** @internal The core's state, and what the old reader had not read yet. */
  state: MovedStreamState
}

/** How the Duplex treats a failed direction (see the file comment). */
export interface QuicStreamOptions {
  /**
   * Node's contract (default true): after 'error' the stream is destroyed and the other direction
   * released, so nothing waits on a stream whose peer gave up. False: a failed direction leaves the
   * other working until the app ends it with end()/destroy() (a reply after the peer reset its
   * request, say); the app then owns the stream's lifetime.
   */
  autoDestroy?: boolean
}

/** @internal */
export interface MovedStreamState {
  core: CoreSnapshot
  /** Bytes already in the old Duplex's buffer: their budget was released there. */
  read: Uint8Array[]
  readable: boolean
  writable: boolean
  autoDestroy: boolean
}

export class QuicStream extends Duplex {
  readonly #core: StreamCore
  #writeCallback: ((error?: Error | null) => void) | undefined
  // A stream belongs to the app once handed over (accepted, or opened) and the code awaiting the
  // hand-over has run. Until then failures wait here: Node emits 'error' on nextTick, which would
  // otherwise come before that code could attach a listener.
  #owned = false
  #deferred: Array<[QuicError, 'read' | 'write']> | undefined
  // Which directions this side has, and which failed; a stream emits one 'error' at most (as Node
  // streams do).
  readonly #hasRead: boolean
  readonly #hasWrite: boolean
  readonly #autoDestroy: boolean
  #readFailed = false
  #writeFailed = false
  #errorEmitted = false
  // destroy() called by this adapter after a failure: the core was released already.
  #failing = false
  #transferred = false
  // end(chunk) on an idle stream: the chunk's write carries the FIN (one native send, not two).
  #finWithWrite = false
  #acknowledged?: { promise: Promise<void>, resolve: () => void, reject: (error: Error) => void }

  /** @internal Streams are made by QuicConnection (openStream, acceptStream) and adopt(). */
  constructor (core: StreamCore, options: QuicStreamOptions = {}, moved?: MovedStreamState) {
    // A one-way stream is born ended on the side that carries nothing. A direction that failed
    // before this adapter existed is reported (at the hand-over) like any other failure.
    const sides = moved !== undefined
      ? { readable: moved.readable, writable: moved.writable }
      : { readable: !(core.local && core.unidirectional), writable: !(!core.local && core.unidirectional) && core.write !== 'ending' }
    const autoDestroy = moved?.autoDestroy ?? options.autoDestroy ?? true
    // Node's autoDestroy as the app chose: its own machinery (async iterators, write errors) then
    // destroys as Node code expects. Failures of one direction are decided here ([kSettle], #fail).
    super({ allowHalfOpen: true, autoDestroy, highWaterMark: INITIAL_SEND_WINDOW, ...sides } as DuplexOptions)
    this.#core = core
    this.#hasRead = sides.readable
    this.#hasWrite = sides.writable || core.write === 'ending'
    this.#autoDestroy = autoDestroy
    // What the old reader left comes first; attach() then tells of a FIN that is already here.
    for (const chunk of moved?.read ?? []) this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    const endedBefore = core.read === 'ended'
    // Failures that came before this adapter (a reset before the accept, or before a move) are
    // told now, and reported at the hand-over.
    core.attach(this)
    if (moved !== undefined && endedBefore) this.push(null)
    this.once('end', settleOnce)
    this.once('finish', settleOnce)
  }

  /**
   * Takes over, in this thread, a stream another thread gave up with `transfer()`: what its reader
   * had not read yet comes first, then every event since, in order. Its connection stays on the
   * other thread; if that connection closes, this stream ends with ERR_QUIC_CLOSED. A side that
   * had already ended before the move ('end' emitted, or end() finished) stays ended: check
   * `readableEnded` and `writableFinished`.
   */
  static adopt (handle: QuicStreamHandle): QuicStream {
    if (typeof handle !== 'object' || handle === null || handle.kind !== 'node-msquic/stream' ||
        !Number.isSafeInteger(handle.id) || !isMovedState(handle.state)) {
      throw invalidArgType('handle', 'a handle from stream.transfer()', handle)
    }
    const core = new StreamCore(runtime().adoptStream(handle.id), elsewhere, handle.state.core.local, { snapshot: handle.state.core })
    const stream = new QuicStream(core, {}, handle.state)
    stream[kHandOver]()
    return stream
  }

  /**
   * Gives this stream up so another thread can `adopt()` it: returns a handle to post there. Bytes
   * received and not yet read travel with it; everything that arrives meanwhile is held natively
   * and delivered, in order, to the new owner. The connection stays here. This object is destroyed
   * (it emits 'close', not 'end' or 'error'); `transferred` turns true, and reset(), stopSending()
   * and transfer() throw ERR_QUIC_TRANSFERRED.
   *
   * Stop reading first (no 'data' or 'readable' listeners) and let writes finish (no write waiting
   * for 'drain', no end() still finishing). Call it from async code, not from inside an event listener.
   * The connection no longer counts the stream: its graceful close() does not wait for it.
   */
  transfer (): QuicStreamHandle {
    this.#assertNotTransferred()
    if (this.#core.closed || this.destroyed) throw closedError('The stream')
    const refuse = (why: string): Error => invalidState(`transfer() ${why}`)
    if (isDispatching()) throw refuse('cannot run inside an event listener; call it from async code (e.g. after an await)')
    if (this.#core.blocked) throw refuse('needs the stream to be open (the peer has not granted credit yet)')
    if (this.listenerCount('data') > 0 || this.listenerCount('readable') > 0) {
      throw refuse('needs the reading to stop first: remove the \'data\' and \'readable\' listeners')
    }
    if (this.writableLength > 0 || (this.writableEnded && !this.writableFinished)) {
      throw refuse('needs the writes made so far to finish first (wait for \'drain\' or \'finish\')')
    }
    const id = runtime().transferStream(this.#core.native)
    const state: MovedStreamState = { core: this.#core.detach(), read: [], readable: this.readable, writable: this.writable, autoDestroy: this.#autoDestroy }
    this.#transferred = true
    // Destroyed before its buffer is read out, so the read-out ends nothing ('end' never comes).
    this.destroy()
    for (let chunk = this.read() as Buffer | null; chunk !== null; chunk = this.read() as Buffer | null) state.read.push(chunk)
    return { kind: 'node-msquic/stream', id, state }
  }

  /** Whether this side opened the stream. */
  get local (): boolean {
    return this.#core.local
  }

  /** Whether the stream carries data one way only (from its opener). */
  get unidirectional (): boolean {
    return this.#core.unidirectional
  }

  /** Whether this stream moved to another thread (`transfer()`). */
  get transferred (): boolean {
    return this.#transferred
  }

  /** The QUIC stream id; null until a local stream has started. */
  get id (): number | null {
    return this.#core.id
  }

  /**
   * Whether some of the bytes received so far came as 0-RTT data (a resuming client sent them
   * before the handshake completed): an attacker who captured them could replay them, so act on
   * them only if doing so twice is harmless.
   */
  get earlyData (): boolean {
    return this.#core.earlyData
  }

  /** Whether this local stream is waiting for the peer to grant stream credit. */
  get blocked (): boolean {
    return this.#core.blocked
  }

  /** The read direction's state: 'open', 'ended', 'reset' (by the peer, or aborted) or 'stopped' (stopSending()). */
  get readState (): StreamCore['read'] {
    return this.#core.read
  }

  /** The write direction's state: 'open', 'ending', 'finished' (acknowledged), 'reset' or 'stopped' (by the peer). */
  get writeState (): StreamCore['write'] {
    return this.#core.write
  }

  /**
   * Resolves once the peer has acknowledged every byte written and the end of the stream
   * (MsQuic's graceful SEND_SHUTDOWN_COMPLETE); `'finish'` only means they were queued. Rejects
   * if the write side is reset, stopped by the peer, or the stream closes before that. The
   * `'acknowledged'` event says the same: at once once this getter was read, else when the stream
   * closes (hearing of it at once costs a native event, which streams nobody asks about skip).
   */
  get acknowledged (): Promise<void> {
    if (this.#acknowledged === undefined) {
      let resolve!: () => void
      let reject!: (error: Error) => void
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
      this.#acknowledged = { promise, resolve, reject }
      this.#core.watchAcknowledged()
      const write = this.#core.write
      if (write === 'finished') resolve()
      else if (write !== 'open' && write !== 'ending') reject(this.#core.writeError ?? closedError('The stream\'s sending side'))
    }
    return this.#acknowledged.promise
  }

  /** Aborts the sending direction with RESET_STREAM(`code`); reading goes on. */
  reset (code: number | bigint = 0): void {
    checkErrorCode(code)
    this.#assertNotTransferred()
    this.#core.reset(code)
    this.#acknowledged?.reject(new QuicError(QuicErrorCode.STREAM_RESET, `The stream was reset (code ${code})`, { errorCode: code, direction: 'write' }))
    // The reset discards what was queued; an error here would fail the reading side as well.
    this.#releaseWrite()
    if (!this.writableEnded) this.end()
  }

  /** Asks the peer to stop sending with STOP_SENDING(`code`) and ends the readable side. */
  stopSending (code: number | bigint = 0): void {
    checkErrorCode(code)
    this.#assertNotTransferred()
    if (this.#core.read !== 'open') return
    this.#core.stopSending(code)
    this.push(null)
  }

  /** @internal */
  get [kCore] (): StreamCore {
    return this.#core
  }

  /** @internal Lets the lazy multistream-select dialer read the answer before the app. */
  readPrefix (reader: PrefixReader): void {
    this.#core.readPrefix(reader)
  }

  /**
   * @internal The stream is the app's from now on: failures are reported once the code awaiting
   * the hand-over has run (`now`: it has).
   */
  [kHandOver] (now = false): void {
    if (!now) {
      handOvers.push(this)
      if (handOvers.length === 1) setImmediate(settleHandOvers)
      return
    }
    this.#owned = true
    const deferred = this.#deferred
    this.#deferred = undefined
    for (const [error, direction] of deferred ?? []) this.#fail(error, direction)
    if (this.#core.closed) this[kSettle]()
  }

  // StreamSink: what the core tells this adapter.

  /** @internal */
  onData (chunk: Buffer): boolean {
    return this.push(chunk)
  }

  /** @internal */
  onEnd (): void {
    this.push(null)
  }

  /** @internal */
  onReadError (error: QuicError): void {
    this.#fail(error, 'read')
  }

  /** @internal */
  onWritable (): void {
    this.#releaseWrite()
  }

  /** @internal */
  onWriteError (error: QuicError): void {
    this.#acknowledged?.reject(error)
    this.#fail(error, 'write')
  }

  /** @internal */
  onAcknowledged (): void {
    this.#acknowledged?.resolve()
    this.emit('acknowledged')
  }

  /** @internal */
  onClosed (quiet: boolean): void {
    this.#acknowledged?.reject(closedError('The stream'))
    // This side's app closed the connection: its streams end quietly, as destroy() would.
    if (quiet) this.destroy()
    else if (this.#owned) this[kSettle]()  // else once handed over, after the failures
  }

  /**
   * As Writable's end(). On an idle stream (nothing buffered or in flight), `end(chunk)` sends the
   * chunk and the FIN in one native call.
   */
  override end (...args: unknown[]): this {
    const chunk = args[0]
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function' && this.writableLength === 0 &&
        !this.writableCorked && !this.writableEnded && this.#writeCallback === undefined && this.#core.write === 'open') {
      this.#finWithWrite = true
    }
    return super.end(...(args as Parameters<Duplex['end']>))
  }

  override _read (): void {
    if (!this.#transferred) this.#core.resume()
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const fin = this.#finWithWrite
    this.#finWithWrite = false
    const result = this.#core.send(chunk, fin)
    // Within MsQuic's ideal send buffer the write is done; beyond it, wait for room.
    if (result === SendResult.Sent) callback()
    else this.#waitForWrite(callback, result)
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.#finWithWrite = false
    if (this.#core.write === 'ending' || this.#core.write === 'finished') {
      callback()  // the FIN went with the last write
      return
    }
    const result = this.#core.send(undefined, true)
    if (result === SendResult.Ended) this.#waitForWrite(callback, result)
    else callback()
  }

  // A send that found the window full waits for room. One the native side refused waits for the
  // events that say why (the peer's STOP_SENDING, a reset, the close), unless they came already:
  // the failure is then reported once, as the write side's 'error', and the write is discarded.
  #waitForWrite (callback: (error?: Error | null) => void, result: SendResult): void {
    const write = this.#core.write
    if (result === SendResult.Ended && write !== 'open' && write !== 'ending') callback()
    else this.#writeCallback = callback
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.off('end', settleOnce)
    this.off('finish', settleOnce)
    if (this.#transferred) {
      callback(error)  // the stream lives on in another thread
      return
    }
    // What is still open ends now, so the native stream closes and the peer's credit returns: a
    // read side not finished is stopped, a write side not ended is reset (code 0; reset(code) and
    // stopSending(code) choose codes). A FIN already queued still goes out: aborting it could
    // discard data in flight. destroy(error) from the app is abrupt: both directions, at once.
    // (A peer's own code is never echoed back.)
    if (error !== null && !this.#failing) this.#core.abort(0)
    else this.#core.release(0)
    this.#releaseWrite()
    callback(error)
  }

  // Whether a direction is done from the app's point of view: never there, failed, or ended.
  #readDone (): boolean {
    return !this.#hasRead || this.#readFailed || this.readableEnded || this.#core.read === 'stopped'
  }

  #writeDone (): boolean {
    const write = this.#core.write
    return !this.#hasWrite || this.#writeFailed || this.writableFinished || write === 'reset' || (write === 'stopped' && this.writableEnded)
  }

  /** @internal Destroys the stream once both directions are done. */
  [kSettle] (): void {
    if (!this.destroyed && this.#readDone() && this.#writeDone()) this.destroy()
  }

  #fail (error: QuicError, direction: 'read' | 'write'): void {
    if (!this.#owned) {
      (this.#deferred ??= []).push([error, direction])
      return
    }
    if (this.destroyed) return
    const write = direction === 'write'
    if (write ? this.#writeFailed : this.#readFailed) return
    if (write && this.writableEnded) {
      // A write side the app already ended has nothing left to fail: no 'error' (`acknowledged`
      // and `writeError` say what became of it). On a stream the peer opened, its STOP_SENDING
      // means it no longer wants the answer: the rest of its request is not wanted either.
      if (this.#autoDestroy && !this.#core.local && !this.#readDone()) this.#end()
      else this[kSettle]()
      return
    }
    if (write) {
      this.#writeFailed = true
      // A write waiting is discarded with its direction (its failure is this 'error').
      this.#releaseWrite()
    } else {
      this.#readFailed = true
    }
    const otherDone = write ? this.#readDone() : this.#writeDone()
    const keepReading = write && this.#core.local && !otherDone
    // The early response: on a stream this side opened, the peer's STOP_SENDING ends our request;
    // its answer is read to the end (or until it fails), and [kSettle] then closes the stream.
    if (otherDone || (this.#autoDestroy && !keepReading)) {
      this.#end(error)
      return
    }
    // Only this direction failed: 'error' says which (`error.direction`), and the other goes on.
    if (this.#errorEmitted) return
    this.#errorEmitted = true
    this.emit('error', error)
  }

  // The stream is over: what is left of it is released, then 'error' (once, if any) and 'close'.
  #end (error?: QuicError): void {
    this.#core.release(0)
    this.#failing = true
    this.destroy(this.#errorEmitted ? undefined : error)
  }

  #releaseWrite (): void {
    const callback = this.#writeCallback
    this.#writeCallback = undefined
    callback?.()
  }

  #assertNotTransferred (): void {
    if (this.#transferred) throw new QuicError(QuicErrorCode.TRANSFERRED, 'The stream moved to another thread; use the object adopt() made there')
  }
}

// One listener function for every stream's 'end' and 'finish' (no closure per stream).
function settleOnce (this: QuicStream): void {
  this[kSettle]()
}

function isMovedState (state: unknown): state is MovedStreamState {
  if (typeof state !== 'object' || state === null) return false
  const { core, read, readable, writable } = state as Partial<MovedStreamState>
  return isCoreSnapshot(core) && Array.isArray(read) && read.every(chunk => chunk instanceof Uint8Array) &&
    typeof readable === 'boolean' && typeof writable === 'boolean'
}
