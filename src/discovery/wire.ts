/**
 * The registry's request/response framing on a libp2p stream: one request, the write side closed,
 * one response read to the end under a size bound. JS thread only.
 */
import type { Stream } from '@libp2p/interface'
import { DiscoveryError, DiscoveryErrorCode } from './errors.js'

/** Reads a stream to its end, refusing more than `max` bytes. */
export async function readAll (stream: Stream, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of stream) {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
    size += bytes.byteLength
    if (size > max) {
      stream.abort(new Error('message too large'))
      throw new DiscoveryError(DiscoveryErrorCode.RESPONSE_TOO_LARGE, `more than ${max} bytes`)
    }
    chunks.push(bytes)
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
}

/** Sends `data` on `stream`, closes its write side, and reads the answer (at most `max` bytes). */
export async function exchange (stream: Stream, data: Uint8Array, max: number): Promise<Uint8Array> {
  const reading = readAll(stream, max)
  reading.catch(() => {})
  if (data.byteLength > 0 && !stream.send(data)) await stream.onDrain()
  await stream.close()
  return await reading
}
