/**
 * The stream core's driver of the multistream-select engine: a machine of the engine reads the
 * stream's first bytes through the core's prefix reader, on the JS thread, inside the core's
 * delivery, before any reader of the stream sees them; the application gets only what follows
 * the agreement. Drives the lazy dialer on a QuicStream (lazy.ts) and both sides on the libp2p
 * stream (src/libp2p/negotiation.ts), which add their own deadlines and failure handling.
 */
import type { PrefixReader } from '../quic/stream-core.js'
import type { NegotiationMachine } from './engine.js'

/** A stream (core) whose received bytes can be taken before its reader sees them. */
export interface PrefixSource {
  readPrefix: (reader: PrefixReader) => void
}

/** What the driver does with the machine's output. */
export interface PrefixDriver {
  /**
   * Sends the machine's bytes. `lazy`: they are the answer that agrees with a lazy dialer, whose
   * data is here already (it does not wait for the answer, so the answer may wait for the
   * application's first bytes).
   */
  send: (bytes: Uint8Array, lazy: boolean) => void
  /**
   * Called once: with the agreed protocol (`lazy` as for send()), or with the error that ended the
   * negotiation (the machine's, or stop()'s). After an error the stream is the caller's to reset;
   * until then nothing it receives reaches the application.
   */
  settle: (error: unknown, protocol?: string, lazy?: boolean) => void
}

const stopped = new Error('The negotiation was stopped')

/**
 * Runs `machine` on `source`'s received bytes until the sides agree or it fails. Returns stop(),
 * which ends the negotiation from outside (a deadline, an abort, the stream closing) with `error`.
 */
export function negotiateOnPrefix (source: PrefixSource, machine: NegotiationMachine, driver: PrefixDriver): (error: unknown) => void {
  let done = false
  const settle = (error: unknown, protocol?: string, lazy?: boolean): void => {
    if (done) return
    done = true
    driver.settle(error, protocol, lazy)
  }
  source.readPrefix(chunk => {
    // Stopped from outside: the core drops what comes until the caller resets the stream.
    if (done) throw stopped
    let step
    try {
      step = chunk === null ? undefined : machine.push(chunk)
      if (step === undefined) throw machine.end()
    } catch (error) {
      settle(error)
      throw error
    }
    const rest = step.rest
    const lazy = rest !== undefined && rest.length > 0
    if (step.send !== undefined) driver.send(step.send, lazy)
    if (step.protocol === undefined || rest === undefined) return undefined
    settle(undefined, step.protocol, lazy)
    return Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength)
  })
  return error => { settle(error) }
}
