/**
 * StreamCore: the one state machine of a native QUIC stream, and the only owner of its native
 * events. It holds what the app has not taken yet (received bytes, counted against the native
 * receive budget only when delivered, so QUIC flow control stays the backpressure), the send
 * window, the wait for stream credit, and one state per direction. Adapters (the node:stream
 * Duplex, the request path, the libp2p stream) sit on top through a {@link StreamSink} and never
 * re-buffer what the core holds. JS thread only.
 *
 * The directions are independent, as in RFC 9000 §3: a peer RESET_STREAM ends only the read side,
 * a peer STOP_SENDING only the write side. docs/lifecycle.md draws both machines.
 */
import { QuicError, QuicErrorCode, closedError, errorFromStatus } from '../errors.js'
import { Ev, SendResult, ShutdownFlag, StreamShutdown, kOnNativeEvent, native, type NativeStream } from '../native.js'
import { kCloseError, kClosedByApp, kStreamBlocked, kStreamClosed, kStreamMoved } from './symbols.js'

/**
 * The read direction. `open` → `ended` (the peer's FIN, after every byte was delivered) | `reset`
 * (the peer's RESET_STREAM, or the stream aborted) | `stopped` (this side's STOP_SENDING).
 */
export type ReadState = 'open' | 'ended' | 'reset' | 'stopped'

/**
 * The write direction. `open` → `ending` (FIN queued) → `finished` (the peer acknowledged every
 * byte and the FIN); from `open` or `ending` → `reset` (this side's RESET_STREAM, or the stream
 * aborted) | `stopped` (the peer's STOP_SENDING).
 */
export type WriteState = 'open' | 'ending' | 'finished' | 'reset' | 'stopped'

/** What an adapter hears from its core. Every call runs on the JS thread, in event order. */
export interface StreamSink {
  /** Received bytes, in order. Return false to stop delivery until `core.resume()`. */
  onData: (chunk: Buffer) => boolean
  /** The read side ended cleanly: every byte up to the peer's FIN was delivered. */
  onEnd: () => void
  /** The read side failed (the peer's RESET_STREAM, or the stream or connection aborted). */
  onReadError: (error: QuicError) => void
  /** A send that found the window full may go on. */
  onWritable: () => void
  /** The write side failed (the peer's STOP_SENDING, or the stream or connection aborted). */
  onWriteError: (error: QuicError) => void
  /** The peer acknowledged every byte sent and the FIN. */
  onAcknowledged: () => void
  /** The native stream is gone (both directions done). `quiet`: this side's app closed the connection. */
  onClosed: (quiet: boolean) => void
  /** Collect mode (the request path): the whole message, or `tooLarge` when it outgrew its limit. */
  onMessage?: (message: Buffer | undefined, tooLarge: boolean) => void
}

/** What a stream needs from its connection. */
export interface StreamParent {
  [kStreamClosed]: (core: StreamCore) => void
  [kStreamMoved]: (core: StreamCore) => void
  [kCloseError]: () => QuicError | undefined
  [kClosedByApp]: () => boolean
  [kStreamBlocked]: (core: StreamCore, blocked: boolean) => void
}

/**
 * Bytes the reader takes before the app sees any (multistream-select's lazy answer): it gets each
 * chunk, and `null` at the peer's FIN, until it returns what is left for the app (possibly empty).
 * It may throw; the core then leaves the stream to it (it resets the stream itself).
 */
export type PrefixReader = (chunk: Buffer | null) => Buffer | undefined

/** How a core starts. @internal */
export interface CoreOptions {
  /** A local stream opened without data: `opened` settles once the peer grants credit. */
  waitForCredit?: boolean
  /** A local stream whose FIN went out with its first bytes, in the call that opened it. */
  finSent?: boolean
  /** Adopted from another thread. */
  snapshot?: CoreSnapshot
  /** Whether the stream is one-way, when the caller knows (else the native stream is asked). */
  unidirectional?: boolean
  /** The stream id, when the caller knows it (a peer stream's arrival says it). */
  id?: number
}

/** A core's state in transit to another thread (structured-cloneable). @internal */
export interface CoreSnapshot {
  local: boolean
  read: ReadState
  write: WriteState
  /** Bytes not yet delivered; their budget is released where they are delivered. */
  pending: Uint8Array[]
  /** The peer's FIN arrived (after `pending`). */
  peerFin: boolean
  readError?: ErrorSnapshot
  writeError?: ErrorSnapshot
}

/** @internal */
export interface ErrorSnapshot { code: QuicErrorCode, message: string, errorCode?: bigint, direction?: 'read' | 'write' }

// An adopted stream's connection lives on another thread: only the stream's own events come here.
export const elsewhere: StreamParent = {
  [kStreamClosed]: () => {},
  [kStreamMoved]: () => {},
  [kCloseError]: () => new QuicError(QuicErrorCode.CLOSED, 'The stream\'s connection closed'),
  [kClosedByApp]: () => false,
  [kStreamBlocked]: () => {}
}

const swallow: PrefixReader = () => undefined

const noSink: StreamSink = {
  onData: () => false,
  onEnd: () => {},
  onReadError: () => {},
  onWritable: () => {},
  onWriteError: () => {},
  onAcknowledged: () => {},
  onClosed: () => {}
}

export class StreamCore {
  /** Whether this side opened the stream. */
  readonly local: boolean
  /** Whether the stream carries data one way only (from its opener). */
  readonly unidirectional: boolean
  /** @internal */
  readonly native: NativeStream
  #parent: StreamParent
  #sink: StreamSink = noSink
  #read: ReadState
  #write: WriteState
  #readError: QuicError | undefined
  #writeError: QuicError | undefined
  #pending: Buffer[] = []
  #peerFin = false
  #flowing = false
  #prefix: PrefixReader | undefined
  #closed = false
  // Closed because this side's app closed the connection (no failure is reported then).
  #quiet = false
  #blocked = false
  #id: number | undefined
  #earlyData = false
  // Local streams started without data: settles once the peer has granted credit (or failed).
  #opened?: { promise: Promise<void>, resolve: () => void, reject: (e: Error) => void }

  /** @internal Cores are made by QuicConnection and by adopt(). */
  constructor (handle: NativeStream, parent: StreamParent, local: boolean, options: CoreOptions = {}) {
    this.native = handle
    this.#parent = parent
    this.local = local
    this.unidirectional = options.unidirectional ?? handle.unidirectional()
    this.#id = options.id
    // A one-way stream is born done on the side that carries nothing.
    this.#read = local && this.unidirectional ? 'ended' : 'open'
    this.#write = !local && this.unidirectional ? 'finished' : options.finSent === true ? 'ending' : 'open'
    handle.owner = this
    if (options.snapshot !== undefined) this.#restore(options.snapshot)
    if (options.waitForCredit === true) {
      let resolve!: () => void
      let reject!: (e: Error) => void
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
      promise.catch(() => {})
      this.#opened = { promise, resolve, reject }
    }
  }

  /**
   * The adapter that hears this core from now on; what is pending waits for `resume()`. The first
   * adapter also hears what happened before it existed (a stream queued for accept, or moved), in
   * order: failures, a FIN with nothing before it, the end of the native stream.
   */
  attach (sink: StreamSink): void {
    const first = this.#sink === noSink
    this.#sink = sink
    if (!first) return
    if (this.#readError !== undefined) sink.onReadError(this.#readError)
    if (this.#writeError !== undefined) sink.onWriteError(this.#writeError)
    if (this.#peerFin) this.#deliver()
    if (this.#closed) sink.onClosed(this.#quiet)
  }

  get read (): ReadState { return this.#read }
  get write (): WriteState { return this.#write }
  /** Why the read side failed, if it did. */
  get readError (): QuicError | undefined { return this.#readError }
  /** Why the write side failed, if it did. */
  get writeError (): QuicError | undefined { return this.#writeError }
  /**
   * Whether some of the bytes received came as 0-RTT data: sent before the handshake completed,
   * so an attacker who captured them could replay them (see the README on 0-RTT).
   */
  get earlyData (): boolean { return this.#earlyData }
  /** Whether the native stream is gone. */
  get closed (): boolean { return this.#closed }
  /** Whether this local stream waits for the peer's stream credit. */
  get blocked (): boolean { return this.#blocked }
  /** Bytes received and not yet delivered. */
  get pendingBytes (): number {
    let n = 0
    for (const chunk of this.#pending) n += chunk.length
    return n
  }

  /** The QUIC stream id; null until a local stream has started. */
  get id (): number | null {
    return this.#id ?? (this.#id = this.native.id() ?? undefined) ?? null
  }

  /** Resolves once the peer granted credit (local streams opened without data). */
  get opened (): Promise<void> { return this.#opened?.promise ?? Promise.resolve() }

  /**
   * Asks to hear of the peer's acknowledgement (`onAcknowledged`) as soon as it comes; otherwise it
   * is reported with the stream's final event, which spares a native event per stream.
   */
  watchAcknowledged (): void {
    if (this.#closed || (this.#write !== 'ending' && this.#write !== 'open')) return
    if (this.native.reportAcknowledged() && this.#write === 'ending') {
      this.#write = 'finished'
      this.#sink.onAcknowledged()
    }
  }

  /** The adapter wants data: deliver what is pending, then go on as it arrives. */
  resume (): void {
    this.#flowing = true
    this.#deliver()
  }

  /** Stop delivering until `resume()`. */
  pause (): void {
    this.#flowing = false
  }

  /** Routes received bytes through `reader` first (see {@link PrefixReader}). */
  readPrefix (reader: PrefixReader): void {
    this.#prefix = reader
    const pending = this.#pending.splice(0)
    let fed = 0
    while (fed < pending.length && this.#prefix === reader) this.#feedPrefix(pending[fed++])
    this.#pending.push(...pending.slice(fed))
    if (this.#prefix === reader && this.#peerFin && this.#pending.length === 0) this.#endPrefix()
    this.#deliver()
  }

  /**
   * Sends `chunk` (and the FIN after it if `fin`). Returns what happened: `Full` means wait for
   * `onWritable`; `Ended` means the write side is done (its reason, if it failed, is on its way
   * or in `writeError`). `taken` ends the hold on a peer stream in the same native call.
   */
  send (chunk: Uint8Array | undefined, fin: boolean, taken = false): SendResult {
    if (this.#write !== 'open') return SendResult.Ended
    const result = this.native.send(chunk, fin, taken)
    if (fin && result !== SendResult.Ended) this.#write = 'ending'
    return result
  }

  /** Aborts the write side with RESET_STREAM(`code`). Idempotent; reading goes on. */
  reset (code: number | bigint): void {
    if (this.#write !== 'open' && this.#write !== 'ending') return
    this.#write = 'reset'
    if (!this.#closed) this.native.shutdown(StreamShutdown.AbortSend, code)
  }

  /** Asks the peer to stop sending with STOP_SENDING(`code`); undelivered bytes are dropped. Idempotent. */
  stopSending (code: number | bigint): void {
    if (this.#read !== 'open') return
    this.#read = 'stopped'
    this.#pending.length = 0
    this.#prefix = undefined
    if (!this.#closed) this.native.shutdown(StreamShutdown.AbortReceive, code)
  }

  /**
   * The app is done with the stream: ends what is still open of it, in one native call. A read side
   * the peer has not finished is stopped (STOP_SENDING `code`, undelivered bytes dropped); a write
   * side the app has not ended is reset (RESET_STREAM `code`); a FIN already queued still goes out
   * in full. Once both directions are done the native stream closes and the peer gets its stream
   * credit back. Idempotent; no error is reported for what this side ends itself.
   */
  release (code: number | bigint = 0): void {
    let flags = 0
    if (this.#read === 'open') {
      this.#read = 'stopped'
      this.#pending.length = 0
      this.#prefix = undefined
      if (!this.#peerFin) flags |= StreamShutdown.AbortReceive
    }
    if (this.#write === 'open') {
      this.#write = 'reset'
      flags |= StreamShutdown.AbortSend
    }
    if (flags !== 0 && !this.#closed) this.native.shutdown(flags, code)
    this.#rejectOpened()
  }

  /** Aborts both directions with `code` (what they still carry is lost). Idempotent. */
  abort (code: number | bigint = 0): void {
    const open = (this.#read === 'open' && !this.#peerFin) || this.#write === 'open' || this.#write === 'ending'
    if (this.#read === 'open') this.#read = 'stopped'
    if (this.#write === 'open' || this.#write === 'ending') this.#write = 'reset'
    this.#pending.length = 0
    this.#prefix = undefined
    if (open && !this.#closed) this.native.shutdown(StreamShutdown.Abort, code)
    this.#rejectOpened()
  }

  /** @internal The app took this peer stream: from now on it closes natively when done. */
  taken (): void {
    this.native.taken()
  }

  /** @internal A peer stream nobody will take: reset both ways with `code`; it closes natively. */
  refuse (code: number | bigint): void {
    this.abort(code)
    this.native.taken()
  }

  /** @internal The stream's connection moved to another thread and this stream stayed here. */
  orphan (): void {
    this.#parent = elsewhere
  }

  /**
   * @internal Hands this core's state over for another thread: nothing more is delivered here, and
   * the native handle's events go to whoever adopts it.
   */
  detach (): CoreSnapshot {
    const snapshot: CoreSnapshot = {
      local: this.local,
      read: this.#read,
      write: this.#write,
      pending: this.#pending.splice(0),
      peerFin: this.#peerFin,
      readError: freeze(this.#readError),
      writeError: freeze(this.#writeError)
    }
    this.native.owner = undefined
    this.#sink = noSink
    this.#parent[kStreamMoved](this)
    return snapshot
  }

  /** @internal Runs on the JS thread for each native event of this stream, in order. */
  [kOnNativeEvent] (type: number, status: number, value: number | bigint, code: number | bigint, extra: unknown): void {
    switch (type) {
      case Ev.StreamData:
        if (code === 1) this.#earlyData = true
        if (this.#read !== 'open') return  // stopped here, or reset: nobody wants it
        if (this.#prefix !== undefined) this.#feedPrefix(extra as Buffer)
        else this.#pending.push(extra as Buffer)
        // The last bytes carry the FIN (value 1): the end is known with them, in this batch.
        if (value === 1) this.#onPeerFin()
        else this.#deliver()
        break
      case Ev.StreamPeerSendShutdown:
        if (!this.#peerFin) this.#onPeerFin()
        break
      case Ev.StreamSendReady:
        this.#sink.onWritable()
        break
      case Ev.StreamStartComplete:
        this.#onStartComplete(status, code === 1)
        break
      case Ev.StreamPeerAccepted:
        this.#setBlocked(false)
        this.#resolveOpened()
        break
      case Ev.StreamPeerSendAborted:
        this.#failRead(new QuicError(QuicErrorCode.STREAM_RESET, `The peer reset the stream (code ${code})`, { errorCode: code, direction: 'read' }))
        break
      case Ev.StreamPeerReceiveAborted:
        this.#failWrite(new QuicError(QuicErrorCode.STREAM_RESET, `The peer asked to stop sending (code ${code})`, { errorCode: code, direction: 'write' }), 'stopped')
        break
      case Ev.StreamSendShutdownComplete:
        if (value === 1 && this.#write === 'ending') {
          this.#write = 'finished'
          this.#sink.onAcknowledged()
        }
        break
      case Ev.StreamMessage:
        // A whole message ends at the peer's FIN.
        if (status === 0) this.#peerFin = true
        if (code === 1) this.#earlyData = true
        this.#sink.onMessage?.(status === 0 ? extra as Buffer : undefined, status !== 0)
        break
      case Ev.StreamShutdownComplete:
        this.#onShutdownComplete(Number(value))
        break
    }
  }

  #onPeerFin (): void {
    this.#peerFin = true
    if (this.#prefix !== undefined && this.#pending.length === 0) this.#endPrefix()
    this.#deliver()
  }

  #deliver (): void {
    while (this.#flowing && this.#pending.length > 0 && this.#read === 'open') {
      const chunk = this.#pending.shift() as Buffer
      this.native.consumed(chunk.length)
      this.#flowing = this.#sink.onData(chunk)
    }
    // The end is told to an adapter: one not attached yet hears of it in attach().
    if (this.#peerFin && this.#pending.length === 0 && this.#read === 'open' && this.#prefix === undefined && this.#sink !== noSink) {
      this.#read = 'ended'
      this.#sink.onEnd()
    }
  }

  // The reader eats what it wants; once it is done, the rest of the chunk is pending for the app.
  #feedPrefix (chunk: Buffer): void {
    const reader = this.#prefix as PrefixReader
    let rest: Buffer | undefined
    try {
      rest = reader(chunk)
    } catch {
      // The reader failed and resets the stream itself; until then nothing reaches the app.
      this.#prefix = swallow
      this.native.consumed(chunk.length)
      return
    }
    this.native.consumed(chunk.length - (rest?.length ?? 0))
    if (rest === undefined) return
    this.#prefix = undefined
    // The rest was counted as received but not released: it is released when delivered.
    if (rest.length > 0) this.#pending.push(rest)
  }

  #endPrefix (): void {
    const reader = this.#prefix as PrefixReader
    if (reader === swallow) return  // failed: the read side ends with the reader's reset
    try {
      reader(null)
      this.#prefix = undefined
    } catch {
      this.#prefix = swallow
    }
  }

  #failRead (error: QuicError): void {
    if (this.#read !== 'open') return
    this.#read = 'reset'
    this.#readError = error
    this.#pending.length = 0
    this.#prefix = undefined
    this.#sink.onReadError(error)
  }

  #failWrite (error: QuicError, state: 'reset' | 'stopped'): void {
    if (this.#write !== 'open' && this.#write !== 'ending') return
    this.#write = state
    this.#writeError = error
    this.#sink.onWriteError(error)
  }

  #setBlocked (blocked: boolean): void {
    if (this.#blocked === blocked) return
    this.#blocked = blocked
    this.#parent[kStreamBlocked](this, blocked)
  }

  #onStartComplete (status: number, peerAccepted: boolean): void {
    if (status > 0) {
      // A failed start is followed by SHUTDOWN_COMPLETE (SHUTDOWN_ON_FAIL), which ends the stream.
      if (this.#opened !== undefined) {
        this.#rejectOpened(this.#parent[kCloseError]() ?? errorFromStatus(native.statusName(status), status, 'The stream could not start'))
      }
      return
    }
    if (peerAccepted) this.#resolveOpened()
    else if (this.#opened !== undefined) this.#setBlocked(true)
  }

  #onShutdownComplete (flags: number): void {
    this.#closed = true
    // Collect mode reports the acknowledgement here only.
    if ((flags & ShutdownFlag.SendAcknowledged) !== 0 && this.#write === 'ending') {
      this.#write = 'finished'
      this.#sink.onAcknowledged()
    }
    this.#parent[kStreamClosed](this)
    this.#setBlocked(false)
    const byConnection = (flags & ShutdownFlag.ConnectionShutdown) !== 0
    const quiet = this.#quiet = byConnection && this.#parent[kClosedByApp]()
    const readOpen = this.#read === 'open' && !this.#peerFin
    const writeOpen = this.#write === 'open' || this.#write === 'ending'
    if (quiet) {
      // This side's app closed the connection: its streams end as if it had ended them itself.
      if (readOpen) this.#read = 'stopped'
      if (writeOpen) this.#write = 'reset'
    } else if (readOpen || writeOpen) {
      const cause = (byConnection ? this.#parent[kCloseError]() : undefined)
      const error = (direction: 'read' | 'write'): QuicError => cause ?? new QuicError(QuicErrorCode.STREAM_RESET, 'The stream was aborted', { direction })
      if (readOpen) this.#failRead(error('read'))
      if (writeOpen) this.#failWrite(error('write'), 'reset')
    }
    this.#rejectOpened(this.#readError ?? this.#writeError)
    this.#sink.onClosed(quiet)
  }

  #resolveOpened (): void {
    const opened = this.#opened
    if (opened === undefined) return
    this.#opened = undefined
    opened.resolve()
  }

  // Errors are made only when an open is still waiting: a stack trace per stream is costly.
  #rejectOpened (error?: Error): void {
    const opened = this.#opened
    if (opened === undefined) return
    this.#opened = undefined
    opened.reject(error ?? closedError('The stream'))
  }

  #restore (snapshot: CoreSnapshot): void {
    // Structured cloning turned the Buffers into plain Uint8Arrays.
    for (const bytes of snapshot.pending) this.#pending.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    this.#peerFin = snapshot.peerFin
    this.#read = snapshot.read
    this.#write = snapshot.write
    this.#readError = thaw(snapshot.readError)
    this.#writeError = thaw(snapshot.writeError)
  }
}

const READ_STATES = new Set(['open', 'ended', 'reset', 'stopped'])
const WRITE_STATES = new Set(['open', 'ending', 'finished', 'reset', 'stopped'])

/** @internal Whether `value` is a snapshot detach() made (checked before anything native is claimed). */
export function isCoreSnapshot (value: unknown): value is CoreSnapshot {
  if (typeof value !== 'object' || value === null) return false
  const snapshot = value as Partial<CoreSnapshot>
  const error = (e: unknown): boolean => e === undefined || (typeof e === 'object' && e !== null && typeof (e as ErrorSnapshot).code === 'string' && typeof (e as ErrorSnapshot).message === 'string')
  return typeof snapshot.local === 'boolean' && typeof snapshot.peerFin === 'boolean' &&
    READ_STATES.has(snapshot.read as string) && WRITE_STATES.has(snapshot.write as string) &&
    Array.isArray(snapshot.pending) && snapshot.pending.every(chunk => chunk instanceof Uint8Array) &&
    error(snapshot.readError) && error(snapshot.writeError)
}

function freeze (error: QuicError | undefined): ErrorSnapshot | undefined {
  if (error === undefined) return undefined
  return { code: error.code, message: error.message, errorCode: error.errorCode, direction: error.direction }
}

function thaw (error: ErrorSnapshot | undefined): QuicError | undefined {
  if (error === undefined) return undefined
  return new QuicError(error.code, error.message, { errorCode: error.errorCode, direction: error.direction })
}
