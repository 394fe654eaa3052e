import { X509Certificate, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { connect, listen } from '../../src/index.js'
import { LIBP2P_EXTENSION_OID, createLibp2pCertificate, peerIdOf, verifyLibp2pCertificate } from '../../src/libp2p/certificate.js'
import * as der from '../../src/libp2p/der.js'

const KEY_TYPES = [
  ['Ed25519', async () => await generateKeyPair('Ed25519')],
  ['secp256k1', async () => await generateKeyPair('secp256k1')],
  ['ECDSA', async () => await generateKeyPair('ECDSA')],
  ['RSA', async () => await generateKeyPair('RSA', 2048)]
] as const

function derOf (pem: string): Buffer {
  return new X509Certificate(pem).raw
}

// Replaces the certificate's TBS part and re-signs it with `key` (to build invalid certificates
// whose self-signature still verifies).
function resign (tbs: Buffer, keyPem: string): Buffer {
  const algorithm = der.sequence(der.oid('1.2.840.10045.4.3.2'))
  return der.sequence(tbs, algorithm, der.bitString(sign('sha256', tbs, createPrivateKey(keyPem))))
}

function tbsFields (certificate: Buffer): der.Element[] {
  const [tbs] = der.children(der.readElement(certificate).content)
  return der.children(tbs.content)
}

describe('libp2p TLS certificate', () => {
  for (const [type, generate] of KEY_TYPES) {
    it(`carries and verifies a ${type} host key`, async () => {
      const hostKey = await generate()
      const { cert } = await createLibp2pCertificate(hostKey)
      const x509 = new X509Certificate(cert)
      expect(x509.verify(x509.publicKey)).toBe(true)
      expect(x509.publicKey.asymmetricKeyType).toBe('ec')
      const peer = await verifyLibp2pCertificate(x509.raw)
      expect(peer.toString()).toBe(peerIdOf(hostKey.publicKey).toString())
      if (type !== 'ECDSA') expect(peer.equals(peerIdFromPrivateKey(hostKey))).toBe(true)
      else expect(peer.toString()).toMatch(/^Qm/)
    })
  }

  it('marks the extension critical and finds it by OID', async () => {
    const { cert } = await createLibp2pCertificate(await generateKeyPair('Ed25519'))
    const extensions = tbsFields(derOf(cert)).find(field => field.tag === 0xa3) as der.Element
    const [entry] = der.children(der.children(extensions.content)[0].content)
    const [id, critical] = der.children(entry.content)
    expect(der.oidText(id.content)).toBe(LIBP2P_EXTENSION_OID)
    expect(critical.content[0]).toBe(0xff)
  })

  it('refuses a certificate whose extension was signed by another host key', async () => {
    const a = await createLibp2pCertificate(await generateKeyPair('Ed25519'))
    const b = await createLibp2pCertificate(await generateKeyPair('Ed25519'))
    // a's TBS with b's extension (b's host key signed b's certificate key, not a's).
    const fieldsA = tbsFields(derOf(a.cert))
    const extB = tbsFields(derOf(b.cert)).find(field => field.tag === 0xa3) as der.Element
    const tbs = der.sequence(...fieldsA.map(field => field.tag === 0xa3 ? extB.raw : field.raw))
    await expect(verifyLibp2pCertificate(resign(tbs, a.key))).rejects.toMatchObject({ code: 'ERR_LIBP2P_CERTIFICATE', message: /host key signature/ })
  })

  it('refuses a certificate without the extension, with a bad self-signature, or expired', async () => {
    const { cert, key } = await createLibp2pCertificate(await generateKeyPair('Ed25519'))
    const fields = tbsFields(derOf(cert))
    const withoutExtension = der.sequence(...fields.filter(field => field.tag !== 0xa3).map(field => field.raw))
    await expect(verifyLibp2pCertificate(resign(withoutExtension, key))).rejects.toThrow(/extension is missing/)

    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    const tbs = der.sequence(...fields.map(field => field.raw))
    await expect(verifyLibp2pCertificate(resign(tbs, other))).rejects.toThrow(/self-signature/)

    await expect(verifyLibp2pCertificate(derOf(cert), new Date(Date.now() + 101 * 365 * 24 * 3600_000))).rejects.toThrow(/validity/)
    await expect(verifyLibp2pCertificate(Buffer.from('not a certificate'))).rejects.toThrow(/does not parse/)
  })

  it('refuses an unknown critical extension', async () => {
    const { cert, key } = await createLibp2pCertificate(await generateKeyPair('Ed25519'))
    const fields = tbsFields(derOf(cert))
    const extensions = fields.find(field => field.tag === 0xa3) as der.Element
    const entries = der.children(der.children(extensions.content)[0].content).map(entry => entry.raw)
    entries.push(der.sequence(der.oid('1.2.3.4.5'), der.boolean(true), der.octetString(Buffer.from([5, 0]))))
    const tbs = der.sequence(...fields.map(field => field.tag === 0xa3 ? der.explicit(3, der.sequence(...entries)) : field.raw))
    await expect(verifyLibp2pCertificate(resign(tbs, key))).rejects.toThrow(/unknown critical extension/)
  })

  it('authenticates both sides of a real MsQuic handshake (ALPN libp2p, custom verifyPeer)', async () => {
    const serverKey = await generateKeyPair('Ed25519')
    const clientKey = await generateKeyPair('secp256k1')
    const server = await createLibp2pCertificate(serverKey)
    const client = await createLibp2pCertificate(clientKey)
    const seen: { server?: string, client?: string } = {}
    const listener = await listen({
      host: '127.0.0.1', port: 0, alpn: 'libp2p', ...server,
      verifyPeer: async ({ der }) => { seen.client = (await verifyLibp2pCertificate(der as Buffer)).toString(); return true }
    })
    try {
      const connection = await connect({
        host: '127.0.0.1', port: listener.address().port, alpn: 'libp2p', ...client,
        verifyPeer: async ({ der }) => { seen.server = (await verifyLibp2pCertificate(der as Buffer)).toString(); return true }
      })
      const accepted = await listener.accept()
      expect(seen.server).toBe(peerIdFromPrivateKey(serverKey).toString())
      expect(seen.client).toBe(peerIdFromPrivateKey(clientKey).toString())
      expect(accepted.peerCertificate?.equals(derOf(client.cert))).toBe(true)
      expect(connection.peerCertificate?.equals(derOf(server.cert))).toBe(true)
      await connection.close()
    } finally {
      await listener.close()
    }
  })
})
