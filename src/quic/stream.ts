/**
 * QuicStream: one QUIC stream as a node:stream Duplex. Received bytes wait here until the reader
 * pulls them; only then are they reported to the native budget, so a reader that stops reading
 * holds the peer back through QUIC flow control. Writes complete at once while MsQuic's ideal send
 * buffer has room (the native send window), and wait for room beyond that. JS thread only.
 */
import { Duplex, type DuplexOptions } from 'node:stream'
import { QuicError, QuicErrorCode, closedError, errorFromStatus, invalidArgType } from '../errors.js'
import { Ev, ShutdownFlag, StreamShutdown, isDispatching, native, runtime, type NativeStream } from '../native.js'
import { checkErrorCode } from './error-code.js'
import { kCloseError, kClosedByApp, kJournal, kNative, kOpened, kRefuse, kOwned, kStreamBlocked, kStreamClosed, kStreamMoved, kTaken } from './symbols.js'

// MsQuic's initial ideal send buffer size; the native send window follows its updates.
const INITIAL_SEND_WINDOW = 128 * 1024

// Streams handed over in this turn of the event loop; one setImmediate settles them all.
const handOvers: QuicStream[] = []
function settleHandOvers (): void {
  for (const stream of handOvers.splice(0)) stream[kOwned]()
}

/** What a stream needs from its connection. */
export interface StreamParent {
  [kStreamClosed]: () => void
  [kStreamMoved]: (stream: QuicStream) => void
  [kCloseError]: () => QuicError | undefined
  [kClosedByApp]: () => boolean
  [kStreamBlocked]: (stream: QuicStream, blocked: boolean) => void
}

/**
 * A stream on its way to another thread: a plain object, to send with `postMessage()` and pass to
 * `QuicStream.adopt()` there. It can be adopted once.
 */
export interface QuicStreamHandle {
  kind: 'node-msquic/stream'
  id: number
  /** @internal What the reader had not read yet, and how far each direction got. */
  state: MovedStreamState
}

/** @internal */
export interface MovedStreamState {
  local: boolean
  /** Bytes the old thread's reader had not read; their budget was released there already. */
  read: Uint8Array[]
  /** Bytes not yet handed to the reader; their budget is released where they are read. */
  pending: Uint8Array[]
  remoteEnded: boolean
  endPushed: boolean
  readable: boolean
  writable: boolean
  /** A failure that came before the app could hear it (a reset right after the accept). */
  failure?: { code: QuicErrorCode, message: string, errorCode?: number | bigint }
}

// An adopted stream's connection lives on another thread: only the stream's own events come here.
const elsewhere: StreamParent = {
  [kStreamClosed]: () => {},
  [kStreamMoved]: () => {},
  [kCloseError]: () => new QuicError(QuicErrorCode.CLOSED, 'The stream\'s connection closed'),
  [kClosedByApp]: () => false,
  [kStreamBlocked]: () => {}
}

export class QuicStream extends Duplex {
  /** Whether this side opened the stream. */
  readonly local: boolean
  /** Whether the stream carries data one way only (from its opener). */
  readonly unidirectional: boolean
  readonly #native: NativeStream
  readonly #parent: StreamParent
  readonly #pending: Buffer[] = []
  #wantsData = false
  #remoteEnded = false
  #endPushed = false
  #writeCallback: ((error?: Error | null) => void) | undefined
  #nativeClosed = false
  #sendAborted = false
  #blocked = false
  // A stream belongs to the app once handed over (accepted, or opened). Until then, and until the
  // code awaiting the hand-over has run, a failure waits here: Node emits 'error' on nextTick,
  // which would otherwise come before that code could attach a listener.
  #owned = false
  #pendingFailure: Error | undefined
  #transferred = false
  // Peer streams not yet accepted keep the events they received, so that if their connection moves
  // to another thread the new owner can be given them again, in order.
  #journal: unknown[] | undefined
  // Local streams: settles once the peer has granted credit (or the stream failed first).
  #opened?: { resolve: () => void, reject: (e: Error) => void }
  #openedPromise?: Promise<void>

  /** @internal Streams are made by QuicConnection (openStream, acceptStream) and adopt(). */
  constructor (handle: NativeStream, parent: StreamParent, local: boolean, moved?: MovedStreamState) {
    const unidirectional = handle.unidirectional()
    // A one-way stream is born ended on the side that carries nothing (Duplex's `readable` and
    // `writable` options, missing from some @types/node versions).
    const sides = moved !== undefined
      ? { readable: moved.readable, writable: moved.writable }
      : { readable: !(local && unidirectional), writable: !(!local && unidirectional) }
    super({ allowHalfOpen: true, highWaterMark: INITIAL_SEND_WINDOW, ...sides } as DuplexOptions)
    this.local = local
    this.unidirectional = unidirectional
    this.#native = handle
    this.#parent = parent
    if (!local && moved === undefined) this.#journal = []
    handle.owner = this
    if (moved !== undefined) {
      this.#resume(moved)
      return
    }
    if (local) {
      let resolve!: () => void
      let reject!: (e: Error) => void
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
      promise.catch(() => {})
      this.#opened = { resolve, reject }
      this.#openedPromise = promise
    }
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
        !Number.isSafeInteger(handle.id) || typeof handle.state !== 'object' || handle.state === null) {
      throw invalidArgType('handle', 'a handle from stream.transfer()', handle)
    }
    const stream = new QuicStream(runtime().adoptStream(handle.id), elsewhere, handle.state.local, handle.state)
    stream.#handOver()
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
    if (this.#nativeClosed || this.destroyed) throw closedError('The stream')
    const refuse = (why: string): Error => Object.assign(new Error(`transfer() ${why}`), { code: 'ERR_INVALID_STATE' })
    if (isDispatching()) throw refuse('cannot run inside an event listener; call it from async code (e.g. after an await)')
    if (this.#opened !== undefined) throw refuse('needs the stream to be open (the peer has not granted credit yet)')
    if (this.listenerCount('data') > 0 || this.listenerCount('readable') > 0) {
      throw refuse('needs the reading to stop first: remove the \'data\' and \'readable\' listeners')
    }
    if (this.writableLength > 0 || (this.writableEnded && !this.writableFinished)) {
      throw refuse('needs the writes made so far to finish first (wait for \'drain\' or \'finish\')')
    }
    const failure = this.#pendingFailure
    const state: MovedStreamState = {
      local: this.local,
      read: [],
      pending: [],
      remoteEnded: this.#remoteEnded,
      endPushed: this.#endPushed,
      readable: this.readable,
      writable: this.writable && !this.#sendAborted,
      failure: failure === undefined ? undefined : failure instanceof QuicError
        ? { code: failure.code, message: failure.message, errorCode: failure.errorCode }
        : { code: QuicErrorCode.INTERNAL, message: failure.message }
    }
    const id = runtime().transferStream(this.#native)
    state.pending = this.#pending.splice(0)
    this.#pendingFailure = undefined
    this.#transferred = true
    this.#native.owner = undefined
    this.#parent[kStreamMoved](this)
    // Destroyed before its buffer is read out, so the read-out ends nothing ('end' never comes).
    this.destroy()
    for (let chunk = this.read() as Buffer | null; chunk !== null; chunk = this.read() as Buffer | null) state.read.push(chunk)
    return { kind: 'node-msquic/stream', id, state }
  }

  /** Whether this stream moved to another thread (`transfer()`). */
  get transferred (): boolean {
    return this.#transferred
  }

  /** The QUIC stream id; null until a local stream has started. */
  get id (): number | null {
    return this.#native.id()
  }

  /** Whether this local stream is waiting for the peer to grant stream credit. */
  get blocked (): boolean {
    return this.#blocked
  }

  /** Aborts the sending direction with RESET_STREAM(`code`); reading goes on. */
  reset (code: number | bigint = 0): void {
    checkErrorCode(code)
    this.#assertNotTransferred()
    if (this.#sendAborted || this.#nativeClosed) return
    this.#native.shutdown(StreamShutdown.AbortSend, code)
    this.#sendAborted = true
    // The reset discards what was queued; an error here would destroy the reading side as well.
    this.#releaseWrite()
    if (!this.writableEnded) this.end()
  }

  /** Asks the peer to stop sending with STOP_SENDING(`code`) and ends the readable side. */
  stopSending (code: number | bigint = 0): void {
    checkErrorCode(code)
    this.#assertNotTransferred()
    if (this.#endPushed || this.#nativeClosed) return
    this.#native.shutdown(StreamShutdown.AbortReceive, code)
    this.#pending.length = 0
    this.#endPushed = true
    this.push(null)
  }

  /** @internal */
  get [kOpened] (): Promise<void> {
    return this.#openedPromise ?? Promise.resolve()
  }

  /** @internal The app took this peer stream: from now on it closes natively when done. */
  [kTaken] (): void {
    this.#journal = undefined
    this.#native.taken()
    this.#handOver()
  }

  /** @internal A peer stream nobody will take: reset both ways with `code`; it closes natively. */
  [kRefuse] (code: number | bigint): void {
    this.#journal = undefined
    this.#native.shutdown(StreamShutdown.Abort, code)
    this.#native.taken()
  }

  /** @internal The native wrapper. */
  get [kNative] (): NativeStream {
    return this.#native
  }

  /** @internal The events this unaccepted stream received, flat as in a native batch. */
  [kJournal] (): unknown[] {
    return this.#journal ?? []
  }

  /** @internal Runs on the JS thread for each native event of this stream, in order. */
  onNativeEvent (type: number, status: number, value: number | bigint, code: number | bigint, extra: unknown): void {
    this.#journal?.push(this.#native, type, status, value, code, extra)
    switch (type) {
      case Ev.StreamData:
        this.#pending.push(extra as Buffer)
        this.#pump()
        break
      case Ev.StreamPeerSendShutdown:
        this.#remoteEnded = true
        this.#pump()
        break
      case Ev.StreamSendReady:
        this.#releaseWrite()
        break
      case Ev.StreamStartComplete:
        this.#onStartComplete(status, code === 1)
        break
      case Ev.StreamPeerAccepted:
        this.#setBlocked(false)
        this.#resolveOpened()
        break
      case Ev.StreamPeerSendAborted:
        this.#fail(new QuicError(QuicErrorCode.STREAM_RESET, `The peer reset the stream (code ${code})`, { errorCode: code }))
        break
      case Ev.StreamPeerReceiveAborted:
        if (!this.writableFinished) {
          this.#fail(new QuicError(QuicErrorCode.STREAM_RESET, `The peer asked to stop sending (code ${code})`, { errorCode: code }))
        }
        break
      case Ev.StreamShutdownComplete:
        this.#onShutdownComplete(Number(value))
        break
    }
  }

  override _read (): void {
    if (this.#transferred) return
    this.#wantsData = true
    this.#pump()
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#sendAborted || this.#nativeClosed) {
      callback(closedError('The stream\'s sending side'))
      return
    }
    let full: boolean
    try {
      full = this.#native.send(chunk, false)
    } catch (error) {
      this.#sendFailed(error, callback)
      return
    }
    // Within MsQuic's ideal send buffer the write is done; beyond it, wait for room.
    if (full) this.#writeCallback = callback
    else callback()
  }

  override _final (callback: (error?: Error | null) => void): void {
    if (this.#sendAborted) {
      callback()
      return
    }
    try {
      this.#native.send(undefined, true)
      callback()
    } catch (error) {
      this.#sendFailed(error, callback)
    }
  }

  // A send the native side refused because the stream or its connection is already ending: the
  // events saying why are queued behind this call, and the final one settles the write with the
  // real reason (the peer's close, a reset) instead of a bare "invalid state".
  #sendFailed (error: unknown, callback: (error?: Error | null) => void): void {
    const ending = error instanceof QuicError && (error.statusName === 'QUIC_STATUS_INVALID_STATE' || error.statusName === 'QUIC_STATUS_ABORTED')
    if (ending && !this.#nativeClosed) this.#writeCallback = callback
    else callback(error as Error)
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    // After a graceful end on both sides MsQuic finishes on its own; aborting then could discard
    // data still in flight. Otherwise the stream ends abruptly for the peer too.
    const graceful = error === null && this.writableFinished && this.readableEnded
    if (this.#transferred) {
      callback(error)  // the stream lives on in another thread
      return
    }
    // destroy() aborts with code 0; reset(code) and stopSending(code) choose codes. (A peer's own
    // code is never echoed back to it.)
    if (!this.#nativeClosed && !graceful) this.#native.shutdown(StreamShutdown.Abort, 0)
    this.#rejectOpened(error ?? undefined)
    this.#releaseWrite(error ?? undefined)
    this.#setBlocked(false)
    callback(error)
  }

  // Adopted: the old thread's unread bytes come first, then the native events.
  #resume (moved: MovedStreamState): void {
    if (moved.failure !== undefined) {
      const { code, message, errorCode } = moved.failure
      this.#fail(new QuicError(code, message, { errorCode }))
    }
    if (!moved.readable) return
    // Structured cloning turned the Buffers into plain Uint8Arrays.
    const buffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    for (const chunk of moved.read) this.push(buffer(chunk))
    for (const chunk of moved.pending) this.#pending.push(buffer(chunk))
    this.#remoteEnded = moved.remoteEnded
    if (moved.endPushed) {
      this.#endPushed = true
      this.push(null)
    }
  }

  #assertNotTransferred (): void {
    if (this.#transferred) throw new QuicError(QuicErrorCode.TRANSFERRED, 'The stream moved to another thread; use the object adopt() made there')
  }

  #pump (): void {
    while (this.#wantsData && this.#pending.length > 0) {
      const chunk = this.#pending.shift() as Buffer
      this.#native.consumed(chunk.length)
      this.#wantsData = this.push(chunk)
    }
    if (this.#remoteEnded && this.#pending.length === 0 && !this.#endPushed) {
      this.#endPushed = true
      this.push(null)
    }
  }

  #releaseWrite (error?: Error): void {
    const callback = this.#writeCallback
    this.#writeCallback = undefined
    callback?.(error)
  }

  #setBlocked (blocked: boolean): void {
    if (this.#blocked === blocked) return
    this.#blocked = blocked
    this.#parent[kStreamBlocked](this, blocked)
  }

  #onStartComplete (status: number, peerAccepted: boolean): void {
    if (status > 0) {
      // A failed start is followed by SHUTDOWN_COMPLETE (SHUTDOWN_ON_FAIL), which destroys the stream.
      if (this.#opened !== undefined) {
        this.#rejectOpened(this.#parent[kCloseError]() ?? errorFromStatus(native.statusName(status), status, 'The stream could not start'))
      }
      return
    }
    if (peerAccepted) this.#resolveOpened()
    else this.#setBlocked(true)
  }

  #onShutdownComplete (flags: number): void {
    this.#nativeClosed = true
    this.#parent[kStreamClosed]()
    const readDone = !this.readable || this.#remoteEnded || this.#endPushed
    // A write still waiting (for room, or for this event after a refused send) did not finish.
    const writeDone = (!this.writable || this.#sendAborted || this.writableFinished || this.writableEnded) &&
      this.#writeCallback === undefined
    if (readDone && writeDone) {
      this.#releaseWrite()
      this.#setBlocked(false)
      this.#rejectOpened()
      return
    }
    const byConnection = (flags & ShutdownFlag.ConnectionShutdown) !== 0
    // This side's app closed the connection: its streams end quietly, as destroy() would.
    if (byConnection && this.#parent[kClosedByApp]()) {
      this.destroy()
      return
    }
    const connectionError = byConnection ? this.#parent[kCloseError]() : undefined
    this.#fail(connectionError ?? new QuicError(QuicErrorCode.STREAM_RESET, 'The stream was aborted'))
  }

  #fail (error: Error): void {
    this.#rejectOpened(error)
    if (this.#owned) this.destroy(error)
    else this.#pendingFailure ??= error
  }

  #resolveOpened (): void {
    if (this.#opened === undefined) return
    this.#opened.resolve()
    this.#opened = undefined
    this.#handOver()
  }

  // Errors are made only when an open is still waiting: a stack trace per stream is costly.
  #rejectOpened (error?: Error): void {
    if (this.#opened === undefined) return
    this.#opened.reject(error ?? closedError('The stream'))
    this.#opened = undefined
  }

  #handOver (): void {
    handOvers.push(this)
    if (handOvers.length === 1) setImmediate(settleHandOvers)
  }

  /** @internal After the code awaiting its hand-over has run: failures reach the app from now on. */
  [kOwned] (): void {
    this.#owned = true
    if (this.#pendingFailure !== undefined) this.destroy(this.#pendingFailure)
  }
}
