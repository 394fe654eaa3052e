/**
 * Lazy selection (rust-libp2p's V1Lazy): the dialer's single proposal leaves at once and its data
 * may follow without waiting; the listener's header and answer are checked as they arrive, before
 * the application reads anything, and a refusal or a malformed answer fails the stream. On a
 * QuicStream the stream core's prefix reader takes the answer out (prefix.ts). Any other Duplex
 * has no such place (its readers see whatever it pushes), so it is wrapped, as js-libp2p's lazy
 * select wraps its stream: the application uses the wrapper.
 */
import { Duplex } from 'node:stream'
import { checkSignal, invalidArgType } from '../errors.js'
import { QuicStream } from '../quic/stream.js'
import { MultistreamDialer } from './engine.js'
import { checkProtocols } from './message.js'
import { negotiateOnPrefix } from './prefix.js'
import { abortError, checkStream, resetStream, streamClosed } from './session.js'

/** Options for {@link selectProtocolLazily}. */
export interface SelectLazilyOptions {
  /** Already aborted: the stream is reset and the promise rejects (`ERR_QUIC_ABORTED`, or `ERR_NEGOTIATION_TIMEOUT` for an AbortSignal.timeout()). */
  signal?: AbortSignal
}

/**
 * Proposes `protocol` on `stream` and resolves at once, with the stream to use from now on: the
 * QuicStream itself, or for any other Duplex a Duplex over it. The application can write at once
 * (its data follows the proposal) and reads only what the listener sends after its answer. A
 * refusal (`na`: `ERR_NEGOTIATION_FAILED`) or a malformed answer (`ERR_NEGOTIATION_PROTOCOL`)
 * resets `stream` and destroys the returned stream with the error. The listener must take data
 * right after the proposal (`lazy` in {@link acceptProtocol}, the default). Call it before anything
 * reads `stream` (on a QuicStream, reading may start before).
 */
export async function selectProtocolLazily (stream: Duplex, protocol: string, options: SelectLazilyOptions = {}): Promise<Duplex> {
  if (typeof protocol !== 'string') throw invalidArgType('protocol', 'a string', protocol)
  checkProtocols(protocol)
  checkSignal(options?.signal)
  const quic = stream instanceof QuicStream
  checkStream(stream, {}, !quic)
  if (stream.destroyed) throw streamClosed(stream)
  if (options.signal?.aborted === true) {
    const error = abortError(options.signal)
    resetStream(stream, error)
    throw error
  }
  const machine = new MultistreamDialer([protocol])
  if (!quic) return new LazilySelected(stream, machine)
  negotiateOnPrefix(stream, machine, {
    send: bytes => { stream.write(bytes) },
    settle: error => {
      // Out of the core's delivery: the reset and the 'error' come on the next tick.
      if (error !== undefined) process.nextTick(() => { resetStream(stream, error, true) })
    }
  })
  stream.write(machine.start())
  return stream
}

/**
 * A Duplex over a lazily selected `inner`: what the application writes goes to `inner` as it is;
 * what `inner` receives goes through the dialer's machine until the answer is in, then to this
 * stream's readers, with `inner` paused while they do not read.
 */
class LazilySelected extends Duplex {
  readonly #inner: Duplex
  #machine: MultistreamDialer | undefined
  #readEnded = false

  constructor (inner: Duplex, machine: MultistreamDialer) {
    super()
    this.#inner = inner
    this.#machine = machine
    inner.write(machine.start())
    inner.on('data', this.#onData)
    inner.on('end', this.#onEnd)
    inner.on('error', this.#onError)
    inner.on('close', this.#onClose)
  }

  override _read (): void {
    this.#inner.resume()
  }

  override _write (chunk: unknown, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#inner.write(chunk, encoding, callback)
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.#inner.end(callback)
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#inner.destroyed) this.#inner.destroy(error ?? undefined)
    callback(error)
  }

  readonly #onData = (chunk: Uint8Array): void => {
    let data = chunk
    const machine = this.#machine
    if (machine !== undefined) {
      let step
      try {
        step = machine.push(chunk)
      } catch (error) {
        this.#fail(error)
        return
      }
      if (step.send !== undefined) this.#inner.write(step.send)
      if (step.rest === undefined) return
      this.#machine = undefined
      data = step.rest
      if (data.length === 0) return
    }
    if (!this.push(data)) this.#inner.pause()
  }

  readonly #onEnd = (): void => {
    if (this.#machine !== undefined) {
      this.#fail(this.#machine.end())
      return
    }
    this.#readEnded = true
    this.push(null)
  }

  readonly #onError = (error: Error): void => {
    this.destroy(error)
  }

  // Destroyed under us: nothing more will arrive.
  readonly #onClose = (): void => {
    if (!this.#readEnded) this.destroy()
  }

  #fail (error: unknown): void {
    this.#machine = undefined
    resetStream(this.#inner, error)
    this.destroy(error as Error)
  }
}
