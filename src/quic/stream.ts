/**
 * QuicStream: one QUIC stream as a node:stream Duplex, a thin adapter over its StreamCore (which
 * holds the received bytes, the budget and the send window; nothing is buffered twice). Received
 * bytes are pulled from the core only when the reader wants them, so a reader that stops reading
 * holds the peer back through QUIC flow control. Writes complete at once while MsQuic's ideal send
 * buffer has room (the native send window), and wait for room beyond that. JS thread only.
 *
 * The two directions fail independently (see StreamCore): a peer's RESET_STREAM fails the
 * readable side and a peer's STOP_SENDING the writable side, each reported once as an 'error'
 * whose `direction` names it, while the other direction goes on. The stream is destroyed
 * ('close') once both directions are done.
 */
import { Duplex, type DuplexOptions } from 'node:stream'
import { QuicError, QuicErrorCode, closedError, invalidArgType, invalidState } from '../errors.js'
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

/** @internal */
export interface MovedStreamState {
  core: CoreSnapshot
  /** Bytes already in the old Duplex's buffer: their budget was released there. */
  read: Uint8Array[]
  readable: boolean
  writable: boolean
}

export class QuicStream extends Duplex {
  readonly #core: StreamCore
  #writeCallback: ((error?: Error | null) => void) | undefined
  // A stream belongs to the app once handed over (accepted, or opened) and the code awaiting the
  // hand-over has run. Until then failures wait here: Node emits 'error' on nextTick, which would
  // otherwise come before that code could attach a listener.
  #owned = false
  #deferred: Array<[QuicError, 'read' | 'write']> | undefined
  // Which directions failed; a stream emits one 'error' at most (as Node streams do).
  #readFailed = false
  #writeFailed = false
  #errorEmitted = false
  #transferred = false
  // end(chunk) on an idle stream: the chunk's write carries the FIN (one native send, not two).
  #finWithWrite = false
  #acknowledged?: { promise: Promise<void>, resolve: () => void, reject: (error: Error) => void }

  /** @internal Streams are made by QuicConnection (openStream, acceptStream) and adopt(). */
  constructor (core: StreamCore, moved?: MovedStreamState) {
    // A one-way stream is born ended on the side that carries nothing. A direction that failed
    // before this adapter existed is reported (at the hand-over) like any other failure.
    const sides = moved !== undefined
      ? { readable: moved.readable, writable: moved.writable }
      : { readable: !(core.local && core.unidirectional), writable: !(!core.local && core.unidirectional) && core.write !== 'ending' }
    // autoDestroy off: the stream is destroyed when both directions are done ([kSettle]), not at the
    // first 'error', so that one direction's failure leaves the other working.
    super({ allowHalfOpen: true, autoDestroy: false, highWaterMark: INITIAL_SEND_WINDOW, ...sides } as DuplexOptions)
    this.#core = core
    core.attach(this)
    if (moved !== undefined) {
      for (const chunk of moved.read) this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
      if (core.read === 'ended') this.push(null)
    }
    // Failures that came before this adapter (a reset before the accept, or before a move).
    if (core.readError !== undefined) this.#fail(core.readError, 'read')
    if (core.writeError !== undefined) this.#fail(core.writeError, 'write')
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
    const stream = new QuicStream(core, handle.state)
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
    const state: MovedStreamState = { core: this.#core.detach(), read: [], readable: this.readable, writable: this.writable }
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
    // Both directions done: MsQuic finishes on its own (aborting could discard data in flight).
    // Otherwise the stream ends abruptly for the peer too: destroy() aborts with code 0;
    // reset(code) and stopSending(code) choose codes. (A peer's own code is never echoed back.)
    if (error !== null || !this.#readDone() || !this.#writeDone()) this.#core.abort(0)
    this.#releaseWrite()
    callback(error)
  }

  #readDone (): boolean {
    return this.readableEnded || this.#readFailed || (!this.readable && this.#core.read !== 'open') || this.#core.read === 'stopped'
  }

  #writeDone (): boolean {
    return this.writableFinished || this.#writeFailed || this.#core.write === 'reset' || (!this.writable && !this.writableEnded)
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
    // A write side the app already finished has nothing left to fail: only `acknowledged` says so.
    if (write && this.writableFinished) return
    if (write) {
      this.#writeFailed = true
      // A write waiting is discarded with its direction (its failure is this 'error').
      this.#releaseWrite()
    } else {
      this.#readFailed = true
    }
    // The other direction is done too (or never existed): the stream is over, as a Node stream
    // ends on an error (with no second 'error' if the other direction already reported one).
    if (write ? this.#readDone() : this.#writeDone()) {
      this.destroy(this.#errorEmitted ? undefined : error)
      return
    }
    // Only this direction failed: 'error' says which (`error.direction`), and the other goes on.
    if (this.#errorEmitted) return
    this.#errorEmitted = true
    this.emit('error', error)
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
