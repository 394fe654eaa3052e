/** connect(): a client connection, verified against `ca` (or the system's roots) by default. */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { checkSignal, invalidArgType, invalidArgValue } from '../args.js'
import { abortedError } from '../errors.js'
import { runtime } from '../native.js'
import { alpnList, clientConfiguration, nativeSettings, port, type QuicSettings, type TlsOptions } from './config.js'
import { QuicConnection } from './connection.js'
import { kConnected } from './symbols.js'

export interface ConnectOptions extends TlsOptions, QuicSettings {
  /** Host name or IP address of the server. */
  host: string
  /** UDP port of the server. */
  port: number
  /** Name the server's certificate must carry, and the SNI sent. Default: `host` (no SNI for an IP). */
  servername?: string
  /** PEM CA certificate(s) to trust instead of the system's. */
  ca?: string | Buffer | Array<string | Buffer>
  /** Check the server's certificate (chain and name). Default true. */
  rejectUnauthorized?: boolean
  /** Aborts the connection attempt. */
  signal?: AbortSignal
  /**
   * A session ticket from an earlier connection to the same server (`connection.sessionTicket`, or
   * the `sessionTicket` event): the handshake resumes that session if the server agrees
   * (`connection.sessionResumed`), and falls back to a full handshake otherwise.
   */
  sessionTicket?: Uint8Array
  /**
   * With `sessionTicket`: send 0-RTT data. connect() then resolves as soon as the connection is
   * started, before the handshake, and what streams and `request()`s send until the handshake
   * completes goes out with the first flight (the server marks it: `stream.earlyData`, a request
   * handler's `info.earlyData`). A server that refuses early data gets it again after the
   * handshake, once, as ordinary data. Early data can be replayed by an attacker who captured it:
   * send only what is harmless twice (see the README). Default false.
   */
  earlyData?: boolean
}

/**
 * Connects to a QUIC server; resolves once the handshake has completed, or, with `earlyData` and a
 * usable `sessionTicket`, once the connection can carry early data (at once).
 */
export async function connect (options: ConnectOptions): Promise<QuicConnection> {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
  if (typeof options.host !== 'string' || options.host === '') throw invalidArgType('host', 'a non-empty string', options.host)
  const remotePort = port(options.port, false)
  const alpn = alpnList(options.alpn)
  if (options.servername !== undefined && (typeof options.servername !== 'string' || options.servername === '')) {
    throw invalidArgValue('servername', 'must be a non-empty string', options.servername)
  }
  if (options.verifyPeer !== undefined && typeof options.verifyPeer !== 'function') throw invalidArgType('verifyPeer', 'a function', options.verifyPeer)
  const { settings, budget, datagramQueue } = nativeSettings(options)
  if (options.sessionTicket !== undefined && !(options.sessionTicket instanceof Uint8Array && options.sessionTicket.length > 0)) {
    throw invalidArgType('sessionTicket', 'a non-empty Buffer or Uint8Array', options.sessionTicket)
  }
  const ticket = options.sessionTicket === undefined ? undefined : Buffer.from(options.sessionTicket)
  if (options.earlyData !== undefined && typeof options.earlyData !== 'boolean') throw invalidArgType('earlyData', 'a boolean', options.earlyData)
  if (options.earlyData === true && ticket === undefined) throw invalidArgValue('earlyData', 'needs a sessionTicket (0-RTT resumes an earlier session)', options.earlyData)
  const signal = checkSignal(options.signal)
  if (signal?.aborted === true) throw abortedError(signal, 'connect')

  const literal = isIP(options.host) !== 0
  const ip = literal ? options.host : (await lookup(options.host)).address
  const expectedHost = options.servername ?? options.host
  // No SNI for an IP literal (MsQuic 2.5 would otherwise send the address as a name).
  const serverName = options.servername ?? (literal ? '' : options.host)
  const verify = options.verifyPeer !== undefined ? 'custom' : options.rejectUnauthorized === false ? 'none' : 'builtin'
  const configuration = clientConfiguration({ client: true, cert: options.cert, key: options.key, ca: options.ca, verify, alpn, settings })
  const handle = new (runtime().Connection)(configuration, ip, remotePort, serverName, expectedHost, budget, datagramQueue, ticket, options.earlyData === true)
  const streamLimits = { bidirectional: settings.peerBidiStreamCount, unidirectional: settings.peerUnidiStreamCount }
  const connection = new QuicConnection(handle, { server: false, verifyPeer: options.verifyPeer, streamLimits })
  // Early data can go now. The connection starts at the next turn of the event loop: what the app
  // sends right after `await connect()` is queued first and leaves in the first flight, with the
  // ClientHello (what it sends later, before the handshake completes, is 0-RTT data too). A signal
  // still aborts it until the handshake completes.
  if (handle.earlyData()) {
    setImmediate(() => { handle.start() })
    if (signal !== undefined) {
      const onAbort = (): void => { connection.destroy(abortedError(signal, 'connect')) }
      signal.addEventListener('abort', onAbort, { once: true })
      const done = (): void => { signal.removeEventListener('abort', onAbort) }
      connection.connected.then(done, done)
    }
    return connection
  }
  const connected = connection[kConnected]
  if (signal === undefined) {
    await connected
    return connection
  }
  // An abort rejects at once; the attempt is dropped silently (no wait for the peer).
  let onAbort!: () => void
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      connection.destroy()
      reject(abortedError(signal, 'connect'))
    }
  })
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    await Promise.race([connected, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  return connection
}
