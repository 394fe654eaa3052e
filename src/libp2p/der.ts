/**
 * The little DER (X.690) the libp2p TLS certificate needs: an encoder for the few types a
 * certificate holds, and a strict reader of tag-length-value elements. Definite lengths only.
 */

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31
} as const

function length (n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

/** One element: `tag`, then the length of `content`, then `content`. */
export function tlv (tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content)
  return Buffer.concat([Buffer.from([tag]), length(body.length), body])
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(Tag.SEQUENCE, ...items)
export const set = (...items: Uint8Array[]): Buffer => tlv(Tag.SET, ...items)
export const octetString = (bytes: Uint8Array): Buffer => tlv(Tag.OCTET_STRING, bytes)
export const bitString = (bytes: Uint8Array): Buffer => tlv(Tag.BIT_STRING, Buffer.from([0]), bytes)
export const utf8String = (text: string): Buffer => tlv(Tag.UTF8_STRING, Buffer.from(text, 'utf8'))
export const boolean = (value: boolean): Buffer => tlv(Tag.BOOLEAN, Buffer.from([value ? 0xff : 0]))
/** Context-specific, constructed, explicit tag `n` around `content`. */
export const explicit = (n: number, ...content: Uint8Array[]): Buffer => tlv(0xa0 | n, ...content)

/** A non-negative INTEGER from big-endian magnitude bytes. */
export function unsignedInteger (magnitude: Uint8Array): Buffer {
  let start = 0
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++
  const bytes = Buffer.from(magnitude.subarray(start))
  return tlv(Tag.INTEGER, (bytes[0] & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes)
}

export function oid (dotted: string): Buffer {
  const parts = dotted.split('.').map(Number)
  const bytes = [parts[0] * 40 + parts[1]]
  for (const part of parts.slice(2)) {
    const chunk: number[] = [part & 0x7f]
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f))
    bytes.push(...chunk)
  }
  return tlv(Tag.OID, Buffer.from(bytes))
}

/** A certificate time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
export function time (date: Date): Buffer {
  const iso = date.toISOString() // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z'
  const year = date.getUTCFullYear()
  return year < 2050 ? tlv(Tag.UTC_TIME, Buffer.from(digits.slice(2), 'ascii')) : tlv(Tag.GENERALIZED_TIME, Buffer.from(digits, 'ascii'))
}

/** One element read from a DER buffer. */
export interface Element {
  tag: number
  /** The content bytes. */
  content: Buffer
  /** The whole element, header included. */
  raw: Buffer
}

/** Reads the element at `offset`; throws on anything malformed or running past the buffer. */
export function readElement (buffer: Buffer, offset = 0): Element {
  if (offset + 2 > buffer.length) throw new Error('DER: truncated element')
  const tag = buffer[offset]
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: multi-byte tags are not supported')
  let len = buffer[offset + 1]
  let header = 2
  if ((len & 0x80) !== 0) {
    const count = len & 0x7f
    if (count === 0 || count > 4) throw new Error('DER: unsupported length')
    if (offset + 2 + count > buffer.length) throw new Error('DER: truncated length')
    len = 0
    for (let i = 0; i < count; i++) len = len * 256 + buffer[offset + 2 + i]
    if (len < 0x80) throw new Error('DER: non-minimal length')
    header += count
  }
  const end = offset + header + len
  if (end > buffer.length) throw new Error('DER: element runs past its buffer')
  return { tag, content: buffer.subarray(offset + header, end), raw: buffer.subarray(offset, end) }
}

/** The elements a constructed element holds, in order. */
export function children (content: Buffer): Element[] {
  const out: Element[] = []
  let offset = 0
  while (offset < content.length) {
    const element = readElement(content, offset)
    out.push(element)
    offset += element.raw.length
  }
  return out
}

/** Dotted text of an OID's content bytes. */
export function oidText (content: Buffer): string {
  if (content.length === 0) throw new Error('DER: empty OID')
  const parts = [Math.floor(content[0] / 40), content[0] % 40]
  let value = 0
  for (const byte of content.subarray(1)) {
    value = value * 128 + (byte & 0x7f)
    if ((byte & 0x80) === 0) {
      parts.push(value)
      value = 0
    }
  }
  return parts.join('.')
}
