/**
 * The libp2p TLS certificate (libp2p/specs tls/tls.md): a self-signed certificate for a fresh
 * ECDSA P-256 key, carrying the libp2p public-key extension (OID 1.3.6.1.4.1.53594.1.1) whose
 * signature by the host key binds the certificate key to the peer id. Made with node:crypto and a
 * small DER encoder; checked the same way inside the handshake's verifyPeer.
 */
import { X509Certificate, createHash, generateKeyPairSync, randomBytes, sign as signData, type KeyObject } from 'node:crypto'
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromMultihash, peerIdFromPublicKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey, PublicKey } from '@libp2p/interface'
import { create as createDigest } from 'multiformats/hashes/digest'
import * as der from './der.js'
import { Libp2pQuicError, Libp2pQuicErrorCode } from './errors.js'

/** The libp2p public-key extension's OID (IANA-assigned to libp2p). */
export const LIBP2P_EXTENSION_OID = '1.3.6.1.4.1.53594.1.1'
/** What the host key signs, before the certificate key's SubjectPublicKeyInfo. */
export const SIGNATURE_PREFIX = 'libp2p-tls-handshake:'

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2'
const COMMON_NAME = '2.5.4.3'
// Extensions a libp2p certificate may mark critical besides its own: the standard ones that peers'
// generators add (basic constraints, key usage, extended key usage, alternative names, key ids).
const KNOWN_EXTENSIONS = new Set([LIBP2P_EXTENSION_OID, '2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.17', '2.5.29.14', '2.5.29.35'])
const HOUR = 3600_000

/** A certificate and its key, PEM, for listen() / connect(). */
export interface Libp2pCertificate {
  cert: string
  key: string
}

/**
 * A fresh certificate for `hostKey`: an ECDSA P-256 certificate key (not the host key, as the spec
 * asks), valid from an hour ago for 100 years, self-signed, with the libp2p extension marked
 * critical (as js-libp2p and rust-libp2p do).
 */
export async function createLibp2pCertificate (hostKey: PrivateKey): Promise<Libp2pCertificate> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  const signature = await hostKey.sign(Buffer.concat([Buffer.from(SIGNATURE_PREFIX, 'ascii'), spki]))
  const extensionValue = der.sequence(der.octetString(publicKeyToProtobuf(hostKey.publicKey)), der.octetString(signature))
  const algorithm = der.sequence(der.oid(ECDSA_WITH_SHA256))
  const serial = randomBytes(16)
  serial[0] &= 0x7f
  const name = der.sequence(der.set(der.sequence(der.oid(COMMON_NAME), der.utf8String('libp2p'))))
  const now = Date.now()
  const tbs = der.sequence(
    der.explicit(0, der.tlv(der.Tag.INTEGER, Buffer.from([2]))),
    der.unsignedInteger(serial),
    algorithm,
    name,
    der.sequence(der.time(new Date(now - HOUR)), der.time(new Date(now + 100 * 365 * 24 * HOUR))),
    name,
    spki,
    der.explicit(3, der.sequence(der.sequence(der.oid(LIBP2P_EXTENSION_OID), der.boolean(true), der.octetString(extensionValue))))
  )
  const certificate = der.sequence(tbs, algorithm, der.bitString(signData('sha256', tbs, privateKey)))
  return {
    cert: pem('CERTIFICATE', certificate),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  }
}

function pem (label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}

/**
 * Checks a peer's certificate as the spec says and returns its peer id: inside its validity
 * window, self-signed with a valid signature, no unique ids, no unknown critical extension, and
 * the libp2p extension (looked up by OID) signed by the host key it names. Throws a
 * Libp2pQuicError (ERR_LIBP2P_CERTIFICATE) otherwise.
 */
export async function verifyLibp2pCertificate (certificateDer: Uint8Array, now = new Date()): Promise<PeerId> {
  const fail = (why: string, cause?: unknown): never => {
    throw new Libp2pQuicError(Libp2pQuicErrorCode.CERTIFICATE, `Invalid libp2p certificate: ${why}`, { cause })
  }
  const bytes = Buffer.from(certificateDer.buffer, certificateDer.byteOffset, certificateDer.byteLength)
  let x509: X509Certificate
  let certificateKey: KeyObject
  try {
    x509 = new X509Certificate(bytes)
    certificateKey = x509.publicKey
  } catch (error) {
    return fail('it does not parse', error)
  }
  if (now < new Date(x509.validFrom) || now > new Date(x509.validTo)) fail('it is outside its validity period')
  if (!x509.verify(certificateKey)) fail('its self-signature does not verify')

  let extension: Buffer | undefined
  try {
    const [tbs] = der.children(der.readElement(bytes).content)
    for (const field of der.children(tbs.content)) {
      if (field.tag === 0x81 || field.tag === 0x82 || field.tag === 0xa1 || field.tag === 0xa2) fail('it carries a unique identifier')
      if (field.tag !== 0xa3) continue
      const [list] = der.children(field.content)
      for (const entry of der.children(list.content)) {
        const parts = der.children(entry.content)
        const id = der.oidText(parts[0].content)
        const critical = parts.length === 3 && parts[1].tag === der.Tag.BOOLEAN && parts[1].content[0] !== 0
        const value = parts[parts.length - 1]
        if (id === LIBP2P_EXTENSION_OID) {
          if (extension !== undefined) fail('it carries the libp2p extension twice')
          extension = value.content
        } else if (critical && !KNOWN_EXTENSIONS.has(id)) {
          fail(`it carries an unknown critical extension (${id})`)
        }
      }
    }
  } catch (error) {
    if (error instanceof Libp2pQuicError) throw error
    fail('it is malformed', error)
  }
  if (extension === undefined) return fail('the libp2p public-key extension is missing')

  let hostKeyBytes: Buffer
  let signature: Buffer
  try {
    const signedKey = der.readElement(extension)
    if (signedKey.tag !== der.Tag.SEQUENCE || signedKey.raw.length !== extension.length) throw new Error('not a SEQUENCE')
    const [key, sig, ...rest] = der.children(signedKey.content)
    if (key?.tag !== der.Tag.OCTET_STRING || sig?.tag !== der.Tag.OCTET_STRING || rest.length > 0) throw new Error('not two OCTET STRINGs')
    hostKeyBytes = key.content
    signature = sig.content
  } catch (error) {
    return fail('the libp2p extension does not decode', error)
  }
  let hostKey
  try {
    hostKey = publicKeyFromProtobuf(hostKeyBytes)
  } catch (error) {
    return fail('the host key in the libp2p extension does not decode', error)
  }
  const spki = certificateKey.export({ type: 'spki', format: 'der' })
  let valid = false
  try {
    valid = await hostKey.verify(Buffer.concat([Buffer.from(SIGNATURE_PREFIX, 'ascii'), spki]), signature)
  } catch (error) {
    fail('the host key signature does not verify', error)
  }
  if (!valid) fail('the host key signature does not verify')
  return peerIdOf(hostKey)
}

/**
 * The peer id of a host key. js-libp2p's PeerId classes know Ed25519, secp256k1 and RSA keys; an
 * ECDSA host key (go-libp2p allows one) gets the id libp2p/specs peer-ids.md gives it: the SHA-256
 * multihash of its protobuf form, which is longer than 42 bytes (as go-libp2p computes it), without
 * an attached public key.
 */
export function peerIdOf (hostKey: PublicKey): PeerId {
  if (hostKey.type !== 'ECDSA') return peerIdFromPublicKey(hostKey)
  return peerIdFromMultihash(createDigest(0x12, createHash('sha256').update(publicKeyToProtobuf(hostKey)).digest()))
}
