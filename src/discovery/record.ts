/**
 * Service records: what a provider publishes about a service, signed with its libp2p key, and how
 * names map to DHT keys. The validator and selector here are what every node of the private DHT
 * runs on a record before it stores or returns it.
 *
 * Wire layout of a record value: `0x01` (version) ‖ u32 BE payload length ‖ payload (UTF-8 JSON)
 * ‖ signature over `SIGNING_DOMAIN ‖ payload`. Keys: `/svc/<hex sha256(KEY_PREFIX + name)>/<peer id>`
 * for records, and a CIDv1 (raw codec) over the same digest for provider records.
 */
import { createHash } from 'node:crypto'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { DiscoveryError, DiscoveryErrorCode } from './errors.js'
import { MAX_METADATA_BYTES, MAX_MULTIADDRS, MAX_NAME_BYTES, metadataBytes } from './bounds.js'

/** The namespace of service records in the DHT (the first segment of their keys). */
export const RECORD_NAMESPACE = 'svc'
/** Hashed before each name, versioned so that a schema change moves every key. */
export const KEY_PREFIX = 'node-msquic/svc/v1/'
/** Signed before each payload, so a record signature can never be replayed as another message. */
export const SIGNING_DOMAIN = 'node-msquic/discovery/record/v1\0'
/** A whole record value on the wire, at most (bytes); larger values are rejected unread. */
export const MAX_RECORD_BYTES = 8192

const RAW_CODEC = 0x55
const SHA2_256 = 0x12
const VERSION = 1

/** A JSON value: what `metadata` may be besides bytes. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** What a provider publishes for one service; what discover() and resolve() return. */
export interface ServiceRecord {
  /** The service name given to advertise(). */
  readonly name: string
  /** The provider, as a string (the record is signed with its key). */
  readonly peerId: string
  /** Where the provider listens. */
  readonly multiaddrs: readonly string[]
  /** What advertise() was given: a JSON value or bytes, returned as given. */
  readonly metadata: JsonValue | Uint8Array | undefined
  /** Grows with every refresh; the newest record of a provider wins. */
  readonly sequence: number
  /** Milliseconds since the epoch after which the record is dead. */
  readonly expiresAt: number
  /** True on the record withdraw() publishes: the service is gone. Live records never carry it. */
  readonly withdrawn?: boolean
}

interface Payload {
  v: number
  name: string
  peer: string
  addrs: string[]
  meta?: { json: JsonValue } | { bytes: string }
  seq: number
  exp: number
  gone?: true
}

/** Why a record value was refused; counted by the registry under these names. */
export type RejectionReason = 'malformed' | 'oversized' | 'signature' | 'expired' | 'wrong-key'

/** A refused record value: never thrown at a discover() or resolve() caller, only counted. */
export class RecordRejection extends Error {
  override readonly name = 'RecordRejection'
  /** @param reason why the record was refused: the label it is counted under */
  constructor (readonly reason: RejectionReason, message: string) {
    super(message)
  }
}

const utf8 = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })

/** sha256 of the prefixed name: the digest both keys of a name are made from. */
export function nameDigest (name: string): Uint8Array {
  return createHash('sha256').update(KEY_PREFIX).update(name, 'utf8').digest()
}

/** The CID that provider records of `name` are stored under (CIDv1, raw codec, sha2-256). */
export function nameToCid (name: string): CID {
  return CID.createV1(RAW_CODEC, Digest.create(SHA2_256, nameDigest(name)))
}

/** The DHT key of `peer`'s record for `name`. */
export function recordKey (name: string, peer: PeerId | string): Uint8Array {
  return utf8.encode(`/${RECORD_NAMESPACE}/${Buffer.from(nameDigest(name)).toString('hex')}/${peer.toString()}`)
}

/** Splits a record key into its name digest (hex) and peer id string; undefined if malformed. */
export function parseRecordKey (key: Uint8Array): { digest: string, peerId: string } | undefined {
  const parts = Buffer.from(key).toString('utf8').split('/')
  if (parts.length !== 4 || parts[0] !== '' || parts[1] !== RECORD_NAMESPACE || !/^[0-9a-f]{64}$/.test(parts[2]) || parts[3] === '') return undefined
  return { digest: parts[2], peerId: parts[3] }
}

/** Checks a record's name: a non-empty string of at most {@link MAX_NAME_BYTES} bytes (the registry's methods check theirs with serviceName()). */
export function checkName (name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new DiscoveryError(DiscoveryErrorCode.INVALID_RECORD, `a service name is a non-empty string of at most ${MAX_NAME_BYTES} bytes`)
  }
  return name
}

function encodeMetadata (metadata: ServiceRecord['metadata']): Payload['meta'] {
  if (metadata === undefined) return undefined
  const meta = metadata instanceof Uint8Array ? { bytes: Buffer.from(metadata).toString('base64') } : { json: metadata }
  const size = metadataBytes(metadata)
  if (size > MAX_METADATA_BYTES) {
    throw new DiscoveryError(DiscoveryErrorCode.INVALID_RECORD, `metadata is ${size} bytes encoded; at most ${MAX_METADATA_BYTES}`)
  }
  return meta
}

function signedBytes (payload: Uint8Array): Uint8Array {
  return Buffer.concat([utf8.encode(SIGNING_DOMAIN), payload])
}

/** Encodes and signs `record` with `privateKey` (which must be the key of `record.peerId`). */
export async function signRecord (record: ServiceRecord, privateKey: PrivateKey): Promise<Uint8Array> {
  const payload: Payload = {
    v: VERSION,
    name: checkName(record.name),
    peer: record.peerId,
    addrs: record.multiaddrs.slice(0, MAX_MULTIADDRS),
    meta: encodeMetadata(record.metadata),
    seq: record.sequence,
    exp: record.expiresAt
  }
  if (record.withdrawn === true) payload.gone = true
  const body = utf8.encode(JSON.stringify(payload))
  const signature = await privateKey.sign(signedBytes(body))
  const out = Buffer.alloc(5 + body.byteLength + signature.byteLength)
  out[0] = VERSION
  out.writeUInt32BE(body.byteLength, 1)
  out.set(body, 5)
  out.set(signature, 5 + body.byteLength)
  if (out.byteLength > MAX_RECORD_BYTES) {
    throw new DiscoveryError(DiscoveryErrorCode.INVALID_RECORD, `the record is ${out.byteLength} bytes; at most ${MAX_RECORD_BYTES}`)
  }
  return out
}

const isString = (v: unknown): v is string => typeof v === 'string'

/**
 * Record values whose signature checked out lately, the whole value as the key (a Map in use order,
 * the least recently used dropped past VERIFIED_MAX): the same signed bytes fetched again cost no
 * second Ed25519 check. Every resolve verifies the record it fetches, and a busy registry fetches the
 * same few records over and over: @libp2p/crypto builds a key object per check, and verification was
 * 14 % of a loaded 31-node registry's JavaScript time. Only good signatures are kept; layout, key and
 * expiry are checked every time.
 */
const verified = new Map<string, true>()
const VERIFIED_MAX = 1024

async function signatureValid (peer: PeerId, body: Uint8Array, signature: Uint8Array, value: Uint8Array): Promise<boolean> {
  const key = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1')
  if (verified.delete(key)) {
    verified.set(key, true)
    return true
  }
  let valid = false
  try {
    valid = await peer.publicKey!.verify(signedBytes(body), signature)
  } catch {}
  if (valid) {
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!)
    verified.set(key, true)
  }
  return valid
}

/**
 * Decodes and verifies a record value: layout, size, signature by the peer it names, and expiry
 * (against `now`, ms since the epoch). Throws a {@link RecordRejection} saying why it refused.
 * A withdrawn record passes while unexpired (it is how a provider says it is gone).
 */
export async function verifyRecord (value: Uint8Array, now = Date.now()): Promise<ServiceRecord> {
  if (!(value instanceof Uint8Array)) throw new RecordRejection('malformed', 'a record value is bytes')
  if (value.byteLength > MAX_RECORD_BYTES) throw new RecordRejection('oversized', `a record of ${value.byteLength} bytes (at most ${MAX_RECORD_BYTES})`)
  if (value.byteLength < 6 || value[0] !== VERSION) throw new RecordRejection('malformed', 'not a version 1 service record')
  const length = Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32BE(1)
  if (5 + length >= value.byteLength) throw new RecordRejection('malformed', 'the payload length runs past the record')
  const body = value.subarray(5, 5 + length)
  const signature = value.subarray(5 + length)
  let payload: Payload
  try {
    payload = JSON.parse(utf8Decoder.decode(body))
  } catch {
    throw new RecordRejection('malformed', 'the payload is not UTF-8 JSON')
  }
  if (payload === null || typeof payload !== 'object' || payload.v !== VERSION || !isString(payload.name) || !isString(payload.peer) ||
      !Array.isArray(payload.addrs) || !payload.addrs.every(isString) || payload.addrs.length > MAX_MULTIADDRS ||
      !Number.isSafeInteger(payload.seq) || !Number.isSafeInteger(payload.exp)) {
    throw new RecordRejection('malformed', 'the payload lacks a field or has one of the wrong type')
  }
  if (Buffer.byteLength(payload.name) > MAX_NAME_BYTES || payload.name.length === 0) throw new RecordRejection('malformed', 'the name is empty or too long')
  let metadata: ServiceRecord['metadata']
  if (payload.meta !== undefined) {
    if ('bytes' in payload.meta && isString(payload.meta.bytes)) metadata = new Uint8Array(Buffer.from(payload.meta.bytes, 'base64'))
    else if ('json' in payload.meta) metadata = payload.meta.json
    else throw new RecordRejection('malformed', 'metadata is neither JSON nor bytes')
    const size = metadata instanceof Uint8Array ? metadata.byteLength : Buffer.byteLength(JSON.stringify(metadata) ?? '')
    if (size > MAX_METADATA_BYTES) throw new RecordRejection('oversized', `metadata of ${size} bytes (at most ${MAX_METADATA_BYTES})`)
  }
  let peer: PeerId
  try {
    peer = peerIdFromString(payload.peer)
  } catch {
    throw new RecordRejection('malformed', 'the peer id does not parse')
  }
  if (peer.publicKey === undefined) throw new RecordRejection('signature', 'the peer id does not carry its public key (use Ed25519 or secp256k1 keys)')
  if (!await signatureValid(peer, body, signature, value)) throw new RecordRejection('signature', `the signature is not ${payload.peer}'s`)
  if (payload.exp <= now) throw new RecordRejection('expired', `the record expired ${now - payload.exp} ms ago`)
  return {
    name: payload.name,
    peerId: payload.peer,
    multiaddrs: payload.addrs,
    metadata,
    sequence: payload.seq,
    expiresAt: payload.exp,
    ...(payload.gone === true ? { withdrawn: true } : {})
  }
}

/**
 * Verifies a record value stored under `key`: {@link verifyRecord}, and the record must be for the
 * name and the peer the key says (a record of another name or another peer is `wrong-key`).
 */
export async function verifyRecordForKey (key: Uint8Array, value: Uint8Array, now = Date.now()): Promise<ServiceRecord> {
  const parsed = parseRecordKey(key)
  if (parsed === undefined) throw new RecordRejection('wrong-key', 'not a service record key')
  const record = await verifyRecord(value, now)
  if (record.peerId !== parsed.peerId || Buffer.from(nameDigest(record.name)).toString('hex') !== parsed.digest) {
    throw new RecordRejection('wrong-key', `a record of "${record.name}" by ${record.peerId} under another name's or peer's key`)
  }
  return record
}

/** Orders two records of one key: the higher sequence wins, then the later expiry. */
export function newer (a: ServiceRecord, b: ServiceRecord): boolean {
  return a.sequence !== b.sequence ? a.sequence > b.sequence : a.expiresAt > b.expiresAt
}

/**
 * The kad-dht selector for the namespace: the index of the newest valid record (see
 * {@link newer}); records that fail verification never win.
 */
export async function selectRecord (key: Uint8Array, values: Uint8Array[]): Promise<number> {
  let best = -1
  let bestRecord: ServiceRecord | undefined
  for (let i = 0; i < values.length; i++) {
    try {
      const record = await verifyRecordForKey(key, values[i])
      if (bestRecord === undefined || newer(record, bestRecord)) {
        best = i
        bestRecord = record
      }
    } catch {}
  }
  return Math.max(best, 0)
}
