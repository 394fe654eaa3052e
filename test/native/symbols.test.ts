import { existsSync, readdirSync } from 'node:fs'
import { createServer, connect as tlsConnect } from 'node:tls'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect } from 'vitest'
import { parseDynamicSymbols } from '../../scripts/elf.mjs'
import { run } from '../child.js'
import { pair, readAll, testCertificate } from '../helpers.js'

// The addon these tests load (NODE_MSQUIC_ADDON: CI runs the suite on the x64 glibc prebuild), and
// every prebuild present (scripts/prebuild-all.mjs; readelf reads the arm64 ones too).
const loaded = process.env.NODE_MSQUIC_ADDON ?? fileURLToPath(new URL('../../build/Release/node_msquic.node', import.meta.url))
const prebuilds = fileURLToPath(new URL('../../prebuilds/', import.meta.url))
const addons = [...new Set([loaded, ...(existsSync(prebuilds) ? readdirSync(prebuilds) : [])
  .flatMap(dir => readdirSync(join(prebuilds, dir)).filter(file => file.endsWith('.node')).map(file => join(prebuilds, dir, file)))])]

describe('symbol isolation', () => {
  it.each(addons)('should export nothing but the module entry, and no OpenSSL symbol: %s', async addon => {
    const symbols = parseDynamicSymbols((await run('readelf', ['-W', '--dyn-syms', addon])).stdout)
    expect(symbols.filter(symbol => symbol.defined).map(symbol => symbol.name).sort())
      .toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1'])
    expect(symbols.map(symbol => symbol.name).filter(name => /^(SSL_|EVP_|X509|OPENSSL_|BN_|CRYPTO_|ERR_)/.test(name))).toEqual([])
    // Not vacuous: an addon links against the C library at least.
    expect(symbols.some(symbol => !symbol.defined)).toBe(true)
  })

  it('should complete QUIC handshakes while node:crypto and node:tls work in the same process', async () => {
    const { cert, key } = await testCertificate()
    const tlsServer = createServer({ cert, key }, socket => socket.end('tls ok'))
    tlsServer.listen(0, '127.0.0.1')
    await once(tlsServer, 'listening')
    const tlsPort = (tlsServer.address() as { port: number }).port
    const rounds = Array.from({ length: 10 }, async (_, i) => {
      // Node's OpenSSL: hashing, key generation and a TLS handshake over TCP.
      createHash('sha256').update(randomBytes(1024)).digest()
      generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const socket = tlsConnect({ host: '127.0.0.1', port: tlsPort, ca: cert, servername: 'localhost' })
      const tlsText = (await readAll(socket)).toString()
      // MsQuic's own TLS library, at the same time.
      const { listener, client, server } = await pair()
      const stream = await client.openStream()
      stream.end(`quic ${i}`)
      const inbound = await server.acceptStream()
      inbound.end(await readAll(inbound))
      const echoed = (await readAll(stream)).toString()
      await client.close()
      await listener.close()
      return [tlsText, echoed]
    })
    const results = await Promise.all(rounds)
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => ['tls ok', `quic ${i}`]))
    tlsServer.close()
  })
})
