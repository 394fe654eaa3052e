// Regression tests for defects the interop tests found (issue 11): the self-signed certificate is a
// leaf (rustls refused a CA used as its own end entity), address() is truthful for wildcard and IPv6
// listeners, and the server sees the name the client asked for (SNI). Against foreign stacks:
// test/interop.
import { X509Certificate } from 'node:crypto'
import { afterEach, describe, expect, test } from 'vitest'
import { connect, createSelfSignedCertificate, listen, type QuicConnection, type QuicListener } from '../../src/index.js'
import { testCertificate } from '../helpers.js'

const open: Array<QuicListener | QuicConnection> = []
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await item.close()
})

describe('createSelfSignedCertificate', () => {
  test('makes a leaf: CA:FALSE, digitalSignature only, serverAuth and clientAuth, the hosts as subjectAltName', async () => {
    const { cert } = await createSelfSignedCertificate({ hosts: ['example.test', '10.1.2.3', '::1'] })
    const x509 = new X509Certificate(cert)
    expect(x509.ca).toBe(false)
    expect(x509.keyUsage?.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
    expect(x509.subjectAltName).toBe('DNS:example.test, IP Address:10.1.2.3, IP Address:0:0:0:0:0:0:0:1')
    expect(x509.verify(x509.publicKey)).toBe(true)
    // keyUsage (2.5.29.15) is critical and carries digitalSignature alone: DER bit string 03 02 07 80.
    const der = x509.raw
    const at = der.indexOf(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0f]))
    expect(der.subarray(at + 5, at + 14)).toEqual(Buffer.from([0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x07, 0x80]))
  })

  test('a client that pins it as its CA connects (OpenSSL in MsQuic)', async () => {
    const { cert, key } = await createSelfSignedCertificate()
    const listener = await listen({ host: '127.0.0.1', alpn: 'a', cert, key })
    open.push(listener)
    const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'a', ca: cert })
    open.push(client)
    expect(client.alpnProtocol).toBe('a')
  })
})

describe('address()', () => {
  for (const [host, expected] of [
    [undefined, { address: '::', family: 'IPv6' }],
    ['::', { address: '::', family: 'IPv6' }],
    ['0.0.0.0', { address: '0.0.0.0', family: 'IPv4' }],
    ['127.0.0.1', { address: '127.0.0.1', family: 'IPv4' }],
    ['::1', { address: '::1', family: 'IPv6' }]
  ] as const) {
    test(`host ${String(host)}: ${expected.address} (${expected.family})`, async () => {
      const { cert, key } = await testCertificate()
      const listener = await listen({ host, alpn: 'a', cert, key })
      open.push(listener)
      expect(listener.address()).toMatchObject(expected)
      expect(listener.address().port).toBeGreaterThan(0)
    })
  }

  test('a dual-stack listener takes IPv4 and IPv6 clients', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '::', alpn: 'a', cert, key })
    open.push(listener)
    for (const host of ['127.0.0.1', '::1']) {
      const client = await connect({ host, port: listener.address().port, alpn: 'a', ca: cert, servername: 'localhost' })
      open.push(client)
      const server = await listener.accept()
      open.push(server)
      expect(server.localAddress?.family).toBe(host === '::1' ? 'IPv6' : 'IPv4')
    }
  })
})

describe('serverName (SNI)', () => {
  test('the server sees the name the client asked for', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', alpn: 'a', cert, key })
    open.push(listener)
    const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'a', ca: cert, servername: 'localhost' })
    open.push(client)
    const server = await listener.accept()
    open.push(server)
    expect(server.serverName).toBe('localhost')
    expect(client.serverName).toBeUndefined()
  })
})
