import { X509Certificate } from 'node:crypto'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { connect, createSelfSignedCertificate, listen, QuicErrorCode, type QuicListener, type PeerCertificate } from '../../src/index.js'
import { testCertificate } from '../helpers.js'

let listener: QuicListener
let port: number
let cert: string

beforeAll(async () => {
  const credentials = await testCertificate()
  cert = credentials.cert
  listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', ...credentials })
  port = listener.address().port
  // Accept and close whatever connects.
  void (async () => { for await (const connection of listener) void connection.close() })()
})

afterAll(async () => { await listener.close() })

describe('certificate verification', () => {
  it('should verify by default and refuse a self-signed certificate nobody trusts', async () => {
    await expect(connect({ host: '127.0.0.1', port, alpn: 'test' })).rejects.toMatchObject({ code: QuicErrorCode.CERTIFICATE })
  })

  it('should refuse a certificate from the wrong CA', async () => {
    const other = await createSelfSignedCertificate()
    const error = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: other.cert }).catch(e => e)
    expect(error).toMatchObject({ code: QuicErrorCode.CERTIFICATE })
    expect(error.message).toMatch(/not trusted/)
  })

  it('should refuse a certificate for the wrong name', async () => {
    const error = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert, servername: 'wrong.example' }).catch(e => e)
    expect(error).toMatchObject({ code: QuicErrorCode.CERTIFICATE })
    expect(error.message).toMatch(/wrong\.example/)
  })

  it('should accept the right CA for a host name and for an IP literal without a server name', async () => {
    const byName = await connect({ host: 'localhost', port, alpn: 'test', ca: cert, servername: 'localhost' })
    const byIp = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })
    expect(byIp.alpnProtocol).toBe('test')
    await Promise.all([byName.close(), byIp.close()])
  })

  it('should connect to an untrusted server with rejectUnauthorized: false', async () => {
    const connection = await connect({ host: '127.0.0.1', port, alpn: 'test', rejectUnauthorized: false })
    await connection.close()
  })

  it('should hand the server\'s DER certificate to verifyPeer and follow its asynchronous verdict', async () => {
    const seen: PeerCertificate[] = []
    const accept = await connect({
      host: '127.0.0.1', port, alpn: 'test',
      verifyPeer: async (certificate) => { seen.push(certificate); await new Promise(resolve => setTimeout(resolve, 20)); return true }
    })
    await accept.close()
    expect(seen[0].der?.equals(new X509Certificate(cert).raw)).toBe(true)
    await expect(connect({ host: '127.0.0.1', port, alpn: 'test', verifyPeer: async () => false }))
      .rejects.toMatchObject({ code: QuicErrorCode.CERTIFICATE })
  })

  it('should let a server require and check client certificates (the libp2p path)', async () => {
    const server = await createSelfSignedCertificate()
    const clientCredentials = await createSelfSignedCertificate({ hosts: ['client.example'] })
    const fromClients: Array<Buffer | undefined> = []
    const mutual = await listen({
      host: '127.0.0.1', port: 0, alpn: 'test', ...server,
      verifyPeer: async ({ der }) => { fromClients.push(der); return der !== undefined }
    })
    const connection = await connect({ host: '127.0.0.1', port: mutual.address().port, alpn: 'test', ca: server.cert, ...clientCredentials })
    const accepted = await mutual.accept()
    expect(fromClients[0]?.equals(new X509Certificate(clientCredentials.cert).raw)).toBe(true)
    await connection.close()
    await accepted.closed
    // Without a client certificate the server refuses it. In TLS 1.3 the client has finished its
    // side of the handshake by then, so it learns of the refusal as a close, and the server never
    // hands the connection to accept().
    const refused = await connect({ host: '127.0.0.1', port: mutual.address().port, alpn: 'test', ca: server.cert })
    const info = await refused.closed
    expect(info.by).toBe('transport')
    expect(info.error).toBeInstanceOf(Error)
    expect(fromClients[1]).toBeUndefined()
    expect(mutual.pendingConnections).toBe(0)
    await mutual.close()
  })

  it('should fail with ERR_QUIC_ALPN when no protocol is shared', async () => {
    await expect(connect({ host: '127.0.0.1', port, alpn: 'other', ca: cert, handshakeTimeout: 3000 }))
      .rejects.toMatchObject({ code: expect.stringMatching(/ERR_QUIC_(ALPN|HANDSHAKE_FAILED|CONNECTION_REFUSED)/) })
  })
})
