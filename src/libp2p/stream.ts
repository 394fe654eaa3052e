/**
 * A libp2p v3 Stream over a native QUIC stream's StreamCore (no node:stream Duplex in between).
 * `pause()`/`resume()` stop and restart delivery from the core, so a reader that does not read
 * holds the peer back through QUIC flow control instead of filling a buffer; `send()` reports the
 * native send window; `closeRead()` sends STOP_SENDING; resets carry application codes.
 */
import { AbstractStream, type AbstractStreamInit } from '@libp2p/utils'
import {
  ConnectionClosedError, InvalidMessageError, LimitedConnectionError, ProtocolError, StreamBufferError,
  TooManyInboundProtocolStreamsError, TooManyOutboundProtocolStreamsError, UnsupportedProtocolError,
  type AbortOptions, type EventHandler
} from '@libp2p/interface'
import { NegotiationError, QuicErrorCode } from '../errors.js'
import { SendResult } from '../native.js'
import { negotiationResetCode } from '../negotiation/session.js'
import type { StreamCore, StreamSink } from '../quic/stream-core.js'
import { StreamResetCode } from './errors.js'

export interface MsQuicStreamInit extends Omit<AbstractStreamInit, 'id'> {
  core: StreamCore
}

// Errors js-libp2p aborts streams with, and the codes the peer hears for them. js-libp2p tells its
// errors apart by name (instanceof fails across copies of @libp2p/interface): so does this table,
// with the names its classes declare.
const RESET_CODES: Record<string, number> = {
  [TooManyInboundProtocolStreamsError.name]: StreamResetCode.RESOURCE_LIMIT_EXCEEDED,
  [TooManyOutboundProtocolStreamsError.name]: StreamResetCode.RESOURCE_LIMIT_EXCEEDED,
  [StreamBufferError.name]: StreamResetCode.RESOURCE_LIMIT_EXCEEDED,
  [UnsupportedProtocolError.name]: StreamResetCode.PROTOCOL_NEGOTIATION_FAILED,
  [InvalidMessageError.name]: StreamResetCode.PROTOCOL_VIOLATION,
  [ProtocolError.name]: StreamResetCode.PROTOCOL_VIOLATION,
  [LimitedConnectionError.name]: StreamResetCode.GATED,
  [ConnectionClosedError.name]: StreamResetCode.SHUTDOWN
}

const MAX_CODE = (1n << 62n) - 1n

/**
 * The application code a reset for `error` carries: for a failed negotiation (a NegotiationError,
 * by its code) libp2p's code for it; else the error's own `errorCode` (a QUIC varint) if it has
 * one, else the libp2p code for what js-libp2p aborted the stream for, else 0.
 */
export function resetCodeOf (error: unknown): number | bigint {
  if (error instanceof NegotiationError) return negotiationResetCode(error)
  const own = (error as { errorCode?: unknown } | undefined)?.errorCode
  if ((typeof own === 'number' && Number.isSafeInteger(own) && own >= 0) || (typeof own === 'bigint' && own >= 0n && own <= MAX_CODE)) return own
  const name = (error as { name?: unknown } | undefined)?.name
  return typeof name === 'string' ? RESET_CODES[name] ?? StreamResetCode.NO_ERROR : StreamResetCode.NO_ERROR
}

// Sends smaller than this wait for the end of the current tick and go out together, or with the
// FIN when close() comes first: one native send for `send(); close()`.
const CORK_BYTES = 16 * 1024

export class MsQuicStream extends AbstractStream {
  readonly #core: StreamCore
  #inOnData = false
  // Bytes (and a FIN) waiting for the end of this tick; undefined when nothing waits.
  #corked: Uint8Array[] | undefined
  #corkedBytes = 0
  #corkedFin = false
  // The last corked send found the window full: later sends report it until 'drain'.
  #full = false
  // Reading ended at the peer's FIN with nothing buffered: bytes a reader gives back (unshift) are
  // still to be read.
  #closedAtFin = false
  readonly #flush = (): void => { this.#flushCork() }

  constructor (init: MsQuicStreamInit) {
    super({ ...init, id: String(init.core.id ?? '') })
    const core = this.#core = init.core
    const sink: StreamSink = {
      onData: chunk => {
        this.#inOnData = true
        try {
          this.onData(chunk)
        } finally {
          this.#inOnData = false
        }
        // Whatever the consumer did not take (paused, or no 'message' listener yet) stays here
        // and stops delivery: the rest waits in QUIC flow control.
        return this.readBuffer.byteLength === 0 && this.readStatus === 'readable'
      },
      onEnd: () => {
        this.onRemoteCloseWrite()
        // The read status follows the wire: with nothing left to read, the FIN ends reading now, not
        // at the next dispatch (a handler that checks `readStatus` after its answer, as kad-dht's
        // does, would otherwise read again, meet the end of the stream and abort its answer).
        if (this.readBuffer.byteLength === 0 && (this.readStatus === 'readable' || this.readStatus === 'paused')) {
          this.readStatus = 'closed'
          this.#closedAtFin = true
          this.maybeDispatchEnd()
        }
      },
      onReadError: error => {
        if (this.status !== 'open' && this.status !== 'closing') return
        if (error.code === QuicErrorCode.STREAM_RESET) {
          // A libp2p reset ends the whole stream: what is left of our sending side ends too, so
          // the native stream closes and the peer gets its stream credit back.
          core.release(StreamResetCode.NO_ERROR)
          this.onRemoteReset()
        } else {
          this.onTransportClosed(error)
        }
      },
      onWritable: () => {
        this.#full = false
        this.safeDispatchEvent('drain')
      },
      onWriteError: error => {
        if (this.status !== 'open' && this.status !== 'closing') return
        if (error.code === QuicErrorCode.STREAM_RESET) {
          // STOP_SENDING: the peer reads no more; what is queued is dropped, and a writer waiting
          // for room is released.
          this.onRemoteCloseRead()
          if (this.writableNeedsDrain) this.safeDispatchEvent('drain')
        } else {
          this.onTransportClosed(error)
        }
      },
      onAcknowledged: () => {},
      onClosed: () => {
        if (this.status !== 'open' && this.status !== 'closing') return
        // The native stream is gone (the peer finished, and stopped our sending), but what it sent
        // may still wait in the core for a consumer that has not read yet: it moves to the read
        // buffer, where it stays readable (with the end of the stream after it).
        while (core.read === 'open' && core.pendingBytes > 0) {
          const before = core.pendingBytes
          core.resume()
          if (core.pendingBytes === before) break
        }
        this.onTransportClosed()
      }
    }
    core.attach(sink)
  }

  /**
   * Inbound: whether the peer sent this stream's first bytes as 0-RTT data (a transport with
   * `earlyData: true` dialling a listener with `sessionTickets: '0rtt'`). Such a stream reaches
   * handlers only once its connection's handshake completed, which a replay of the data never does.
   */
  get earlyData (): boolean {
    return this.#core.earlyData
  }

  /** The native stream core, for applications that want it (stats, direct sends). */
  get core (): StreamCore {
    return this.#core
  }

  /** @internal The id, once a local stream has started. */
  refreshId (): void {
    this.id = String(this.#core.id ?? this.id)
  }

  /**
   * Gives bytes back to the stream, ahead of any not read yet. After the peer's FIN ended reading,
   * they make it readable again until they are read (a multistream-select reader hands back what
   * followed the protocol that way, once it is done).
   */
  override unshift (data: Parameters<AbstractStream['unshift']>[0]): void {
    if (this.#closedAtFin && this.readStatus === 'closed' && data.byteLength > 0 && this.status !== 'reset' && this.status !== 'aborted') {
      this.readStatus = 'readable'
    }
    super.unshift(data)
  }

  // Delivery restarts once the consumer has taken everything buffered here.
  protected override dispatchReadBuffer (): void {
    super.dispatchReadBuffer()
    if (!this.#inOnData && this.readBuffer.byteLength === 0 && this.readStatus === 'readable' && this.listenerCount('message') > 0) this.#core.resume()
  }

  override addEventListener (type: string, listener: EventHandler<Event>, options?: boolean | AddEventListenerOptions): void {
    super.addEventListener(type, listener, options)
    if (type === 'message') queueMicrotask(() => { this.dispatchReadBuffer() })
  }

  /**
   * Iterates what arrives. A reader that starts after the peer's end (its FIN, or the stream
   * closed) gets what is buffered and then the end: the base class would wait for end events that
   * already happened (@libp2p/utils 7.4), and hang.
   */
  override async * [Symbol.asyncIterator] (): AsyncGenerator<Parameters<AbstractStream['unshift']>[0], void, unknown> {
    const ended = this.remoteWriteStatus === 'closed' || this.status === 'closed' || this.status === 'reset' || this.status === 'aborted'
    if (!ended || (this.readStatus !== 'readable' && this.readStatus !== 'paused')) {
      yield * super[Symbol.asyncIterator]()
      return
    }
    if (this.readBuffer.byteLength > 0) {
      const buffered = this.readBuffer.sublist()
      this.readBuffer.consume(buffered.byteLength)
      yield buffered
    }
    this.readStatus = 'closed'
    this.maybeDispatchEnd()
  }

  /**
   * Resolves at the next 'drain' while `send()` says the window is full. (The base class in
   * @libp2p/utils 7.4 keeps its first drain promise once resolved, so every later onDrain() there
   * returns at once and a writer that honours it buffers without bound.)
   */
  override async onDrain (options?: AbortOptions): Promise<void> {
    if (this.writableNeedsDrain !== true) return
    const signal = options?.signal
    signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        this.removeEventListener('drain', onDrain)
        this.removeEventListener('close', onClose)
        signal?.removeEventListener('abort', onAbort)
        if (error === undefined) resolve()
        else reject(error)
      }
      const onDrain = (): void => { settle() }
      const onClose = (evt: Event): void => { settle((evt as Event & { error?: Error }).error ?? new Error('The stream closed')) }
      const onAbort = (): void => { settle(signal?.reason as Error) }
      this.addEventListener('drain', onDrain)
      this.addEventListener('close', onClose)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  sendData (data: Parameters<AbstractStream['sendData']>[0]): { sentBytes: number, canSendMore: boolean } {
    const sentBytes = data.byteLength
    if (this.#corkedBytes + sentBytes < CORK_BYTES) {
      if (this.#corked === undefined) {
        this.#corked = []
        process.nextTick(this.#flush)
      }
      for (const chunk of data) this.#corked.push(chunk)
      this.#corkedBytes += sentBytes
      return { sentBytes, canSendMore: !this.#full }
    }
    this.#flushCork()
    const result = this.#core.send(data.subarray(), false)
    // Ended: the write side is gone (its events say why); the bytes are dropped with it.
    return { sentBytes, canSendMore: result !== SendResult.Full }
  }

  /**
   * @internal Multistream-select's bytes, ahead of any the stream sends: they wait for the end of
   * the tick like small sends, so a lazy proposal leaves with the first data. `untilWrite`: they
   * wait for the stream's first send (or the next turn of the event loop at the latest), so the
   * answer to a lazy dialer, who is not waiting for it, leaves with the handler's first bytes.
   */
  sendNegotiation (bytes: Uint8Array, untilWrite = false): void {
    if (this.#corked === undefined) {
      this.#corked = []
      if (untilWrite) setImmediate(this.#flush)
      else process.nextTick(this.#flush)
    }
    this.#corked.push(bytes)
    this.#corkedBytes += bytes.byteLength
  }

  // One native send for what waited, with the FIN if one was asked for meanwhile.
  #flushCork (): void {
    const corked = this.#corked
    if (corked === undefined) return
    this.#corked = undefined
    const fin = this.#corkedFin
    const bytes = corked.length === 1 ? corked[0] : corked.length === 0 ? undefined : Buffer.concat(corked, this.#corkedBytes)
    this.#corkedBytes = 0
    this.#corkedFin = false
    if (this.#core.send(bytes, fin) === SendResult.Full) this.#full = true
  }

  sendReset (err: Error): void {
    this.#corked = undefined
    this.#corkedBytes = 0
    this.#core.abort(resetCodeOf(err))
  }

  // What waits goes now, with the FIN, in one send: once close() resolves nothing of the stream's is
  // left waiting in JS.
  async sendCloseWrite (_options?: AbortOptions): Promise<void> {
    if (this.#corked === undefined) {
      this.#core.send(undefined, true)
      return
    }
    this.#corkedFin = true
    this.#flushCork()
  }

  async sendCloseRead (_options?: AbortOptions): Promise<void> {
    this.#core.stopSending(StreamResetCode.NO_ERROR)
    // The peer must answer STOP_SENDING by ending its write side, but MsQuic reports nothing of that
    // answer once this side stopped reading: its write side counts as closed from here, on the next
    // turn of the loop (so whoever awaited closeRead() can listen for 'remoteCloseWrite').
    setImmediate(() => {
      if (this.status === 'open' || this.status === 'closing') this.onRemoteCloseWrite()
    })
  }

  sendPause (): void {
    this.#core.pause()
  }

  sendResume (): void {
    this.#core.resume()
  }
}

