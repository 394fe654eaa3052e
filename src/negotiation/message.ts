/**
 * multistream-select 1.0 messages: a uvarint length, UTF-8 text, then `\n` (the length counts the
 * newline). Encoding, and an incremental decoder with strict limits. Pure: no I/O.
 */
import { NegotiationError, NegotiationErrorCode, invalidArgType, invalidArgValue } from '../errors.js'

/** The multistream-select 1.0 header: the first message each side sends. */
export const MULTISTREAM_PROTOCOL_ID = '/multistream/1.0.0'

/** The listener's answer to a protocol it does not speak. */
export const NA = 'na'

/** The dialer's request for the listener's protocols. */
export const LS = 'ls'

/**
 * The longest protocol id, in UTF-8 bytes. go-multistream and js-libp2p cap a message at 1,024
 * bytes including its newline, so they take ids of at most 1,023 bytes; we take one byte more.
 */
export const MAX_PROTOCOL_ID_LENGTH = 1024

/** The longest message read: a protocol id and its newline. */
export const MAX_MESSAGE_LENGTH = MAX_PROTOCOL_ID_LENGTH + 1

/**
 * The most bytes a length prefix may take. Two (up to 16,383) cover MAX_MESSAGE_LENGTH; js-libp2p's
 * listener has the same limit, and it stops a peer from announcing an endless length.
 */
export const MAX_LENGTH_PREFIX = 2

const NEWLINE = 0x0a
const EMPTY: Uint8Array = new Uint8Array(0)
const utf8 = new TextEncoder()
// fatal: invalid UTF-8 is an error rather than U+FFFD; ignoreBOM: a leading BOM is kept as text.
const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function uvarint (value: number): Uint8Array {
  const bytes: number[] = []
  while (value >= 0x80) {
    bytes.push((value & 0x7f) | 0x80)
    value = Math.floor(value / 0x80)
  }
  bytes.push(value)
  return Uint8Array.from(bytes)
}

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

function frame (payload: Uint8Array): Uint8Array {
  return concat([uvarint(payload.length + 1), payload, Uint8Array.of(NEWLINE)])
}

/** One message: the length prefix, `text` in UTF-8, and the newline. */
export function encodeMessage (message: string): Uint8Array {
  return frame(utf8.encode(message))
}

/** Several messages in one buffer, to send in one write (the header and a proposal, say). */
export function encodeMessages (messages: readonly string[]): Uint8Array {
  return concat(messages.map(encodeMessage))
}

/**
 * The answer to `ls`: one message holding a message per protocol, then a newline. It is not text
 * (the inner prefixes are binary), so it can be longer than MAX_MESSAGE_LENGTH.
 */
export function encodeProtocolList (protocols: readonly string[]): Uint8Array {
  return frame(concat(protocols.map(encodeMessage)))
}

/**
 * Checks protocol ids before they are offered or proposed: each a non-empty string of at most
 * MAX_PROTOCOL_ID_LENGTH UTF-8 bytes, without a newline, and not one of the reserved messages.
 * Returns them as an array.
 */
export function checkProtocols (protocols: string | readonly string[]): string[] {
  const list = typeof protocols === 'string' ? [protocols] : protocols
  if (!Array.isArray(list)) throw invalidArgType('protocols', 'a string or an array of strings', protocols)
  if (list.length === 0) throw invalidArgValue('protocols', 'must not be empty', list)
  for (const protocol of list) {
    if (typeof protocol !== 'string') throw invalidArgType('protocols', 'a string or an array of strings', protocol)
    const length = utf8.encode(protocol).length
    if (length === 0 || length > MAX_PROTOCOL_ID_LENGTH) {
      throw invalidArgValue('protocols', `must hold ids of 1 to ${MAX_PROTOCOL_ID_LENGTH} bytes`, protocol, true)
    }
    if (protocol.includes('\n') || protocol === MULTISTREAM_PROTOCOL_ID || protocol === NA || protocol === LS) {
      throw invalidArgValue('protocols', 'must not hold a newline or a reserved message (the header, na, ls)', protocol)
    }
  }
  return [...list]
}

function malformed (reason: string): NegotiationError {
  return new NegotiationError(NegotiationErrorCode.PROTOCOL, `Malformed multistream-select message: ${reason}`, { phase: 'peer' })
}

/**
 * Splits received bytes into messages: push() what arrives, then call next() until it returns
 * undefined ("need more"). A malformed message throws a NegotiationError (`ERR_NEGOTIATION_PROTOCOL`)
 * as soon as it can be told apart from an incomplete one; the decoder is then unusable.
 */
export class MessageDecoder {
  #buffer: Uint8Array = EMPTY

  /** Bytes received and not yet returned as messages. */
  get bufferedLength (): number {
    return this.#buffer.length
  }

  /** Adds received bytes. The decoder keeps a reference: do not change `chunk` afterwards. */
  push (chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.#buffer = this.#buffer.length === 0 ? chunk : concat([this.#buffer, chunk])
  }

  /** The next complete message's text, without its newline; undefined if more bytes are needed. */
  next (): string | undefined {
    const buffer = this.#buffer
    if (buffer.length === 0) return undefined
    let length = buffer[0] & 0x7f
    let offset = 1
    if ((buffer[0] & 0x80) !== 0) {
      if (buffer.length < 2) return undefined
      if ((buffer[1] & 0x80) !== 0) throw malformed(`the length prefix is longer than ${MAX_LENGTH_PREFIX} bytes`)
      // A zero final byte pads a shorter encoding: each length has one encoding.
      if (buffer[1] === 0) throw malformed('the length prefix is not minimally encoded')
      length |= buffer[1] << 7
      offset = 2
    }
    if (length === 0) throw malformed('an empty message (it must hold at least its newline)')
    if (length > MAX_MESSAGE_LENGTH) throw malformed(`${length} bytes is longer than ${MAX_MESSAGE_LENGTH}`)
    const end = offset + length
    if (buffer.length < end) return undefined
    if (buffer[end - 1] !== NEWLINE) throw malformed('it does not end with a newline')
    let message: string
    try {
      message = text.decode(buffer.subarray(offset, end - 1))
    } catch {
      throw malformed('it is not valid UTF-8')
    }
    this.#buffer = buffer.subarray(end)
    return message
  }

  /** Returns the bytes not yet decoded and forgets them (to give back to the stream). */
  take (): Uint8Array {
    const rest = this.#buffer
    this.#buffer = EMPTY
    return rest
  }
}
