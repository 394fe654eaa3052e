/**
 * Options shared by listen() and connect(): validation, defaults, and the native Configuration
 * (ALPN, settings, TLS credentials) built from them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { invalidArgType, invalidArgValue, optionalInteger } from '../args.js'
import { QuicError, QuicErrorCode } from '../errors.js'
import { runtime, type NativeConfiguration } from '../native.js'

/** Transport settings for a listener's connections or a client connection. */
export interface QuicSettings {
  /** Bidirectional streams the peer may have open at once: the stream credit we grant. Default 100 (0–65535). */
  maxBidirectionalStreams?: number
  /** Unidirectional streams the peer may have open at once. Default 100 (0–65535). */
  maxUnidirectionalStreams?: number
  /** Milliseconds without activity before the connection closes. Default 30000; 0 disables. */
  idleTimeout?: number
  /** Milliseconds the handshake may take. Default 10000. */
  handshakeTimeout?: number
  /** Milliseconds between keep-alive packets. Default 0 (off). */
  keepAliveInterval?: number
  /** Initial per-stream receive window in bytes (a power of two). MsQuic's default is 65536. */
  streamReceiveWindow?: number
  /** Connection-wide receive window in bytes. MsQuic's default is 16 MiB. */
  connectionReceiveWindow?: number
  /**
   * Received bytes a stream holds for a reader that is not reading, before QUIC flow control holds
   * the peer back. Default 1 MiB.
   */
  streamReceiveBudget?: number
  /**
   * Congestion control: 'cubic' (MsQuic's default) or 'bbr', which holds its rate under random loss
   * where cubic backs off.
   */
  congestionControl?: 'cubic' | 'bbr'
  /** Take and send unreliable datagrams (RFC 9221); both peers must enable it. Default false. */
  datagrams?: boolean
  /** Datagrams queued for sending at most; `sendDatagram()` returns false beyond it. Default 64. */
  datagramSendQueue?: number
}

/** What `verifyPeer` is given. */
export interface PeerCertificate {
  /** The peer's leaf certificate, DER encoded; absent when the peer sent none. */
  der?: Buffer
}

/** Decides whether to accept the peer's certificate; may be asynchronous. */
export type VerifyPeer = (certificate: PeerCertificate) => boolean | Promise<boolean>

export interface TlsOptions {
  /** ALPN protocol(s): a string or a non-empty array, each 1–255 bytes. */
  alpn: string | string[]
  /** PEM certificate (chain). Required for listeners; a client presents it when asked. */
  cert?: string | Buffer
  /** PEM private key of `cert`. */
  key?: string | Buffer
  /**
   * Replaces MsQuic's certificate checks: called during the handshake with the peer's certificate,
   * whose answer completes or refuses it.
   */
  verifyPeer?: VerifyPeer
}

/** The QUIC layer's defaults (exported as QUIC_DEFAULTS; the layers above import them). */
export const DEFAULTS = {
  maxBidirectionalStreams: 100,
  maxUnidirectionalStreams: 100,
  idleTimeout: 30_000,
  handshakeTimeout: 10_000,
  streamReceiveBudget: 1 << 20,
  datagramSendQueue: 64,
  backlog: 512,
  maxHandshakes: 1024,
  retryAbove: 128
} as const

// MsQuic's QUIC_CONGESTION_CONTROL_ALGORITHM values.
const CONGESTION_CONTROL: Record<string, number> = { cubic: 0, bbr: 1 }

const MAX_U16 = 65535
const MAX_U32 = 2 ** 32 - 1

// An integer option from `min` to `max`, or undefined when not given.
const integer = (name: string, value: unknown, min: number, max: number): number | undefined => optionalInteger(name, value, { min, max }, undefined)

/** Validated settings, in native (MsQuic) names, plus the binding's receive budget. */
export function nativeSettings (options: QuicSettings): { settings: Record<string, number>, budget: number, datagramQueue: number } {
  const settings: Record<string, number> = {
    peerBidiStreamCount: integer('maxBidirectionalStreams', options.maxBidirectionalStreams, 0, MAX_U16) ?? DEFAULTS.maxBidirectionalStreams,
    peerUnidiStreamCount: integer('maxUnidirectionalStreams', options.maxUnidirectionalStreams, 0, MAX_U16) ?? DEFAULTS.maxUnidirectionalStreams,
    idleTimeoutMs: integer('idleTimeout', options.idleTimeout, 0, MAX_U32) ?? DEFAULTS.idleTimeout,
    handshakeIdleTimeoutMs: integer('handshakeTimeout', options.handshakeTimeout, 1, MAX_U32) ?? DEFAULTS.handshakeTimeout
  }
  const keepAlive = integer('keepAliveInterval', options.keepAliveInterval, 0, MAX_U32)
  if (keepAlive !== undefined) settings.keepAliveIntervalMs = keepAlive
  const window = integer('streamReceiveWindow', options.streamReceiveWindow, 1, 2 ** 31)
  if (window !== undefined) {
    if ((window & (window - 1)) !== 0) throw invalidArgValue('streamReceiveWindow', 'must be a power of two', window, true)
    settings.streamReceiveWindow = window
  }
  const connectionWindow = integer('connectionReceiveWindow', options.connectionReceiveWindow, 1, MAX_U32)
  if (connectionWindow !== undefined) settings.connectionReceiveWindow = connectionWindow
  const budget = integer('streamReceiveBudget', options.streamReceiveBudget, 1024, 2 ** 31) ?? DEFAULTS.streamReceiveBudget
  if (options.datagrams !== undefined && typeof options.datagrams !== 'boolean') throw invalidArgType('datagrams', 'a boolean', options.datagrams)
  if (options.datagrams === true) settings.datagramReceiveEnabled = 1
  if (options.congestionControl !== undefined) {
    const algorithm = CONGESTION_CONTROL[options.congestionControl]
    if (algorithm === undefined) throw invalidArgValue('congestionControl', "must be 'cubic' or 'bbr'", options.congestionControl)
    settings.congestionControlAlgorithm = algorithm
  }
  const datagramQueue = integer('datagramSendQueue', options.datagramSendQueue, 1, 65536) ?? DEFAULTS.datagramSendQueue
  return { settings, budget, datagramQueue }
}

/** The ALPN list, validated: 1–255 bytes each, at least one. */
export function alpnList (alpn: unknown): string[] {
  const list = typeof alpn === 'string' ? [alpn] : alpn
  if (!Array.isArray(list)) throw invalidArgType('alpn', 'a string or an array of strings', alpn)
  if (list.length === 0) throw invalidArgValue('alpn', 'must name at least one protocol', alpn)
  for (const entry of list) {
    if (typeof entry !== 'string') throw invalidArgType('alpn', 'a string or an array of strings', entry)
    const length = Buffer.byteLength(entry)
    if (length === 0 || length > 255) throw invalidArgValue('alpn', 'entries must be 1 to 255 bytes long', entry, true)
  }
  return list
}

/** A port number, validated. */
export function port (value: unknown, allowZero: boolean): number {
  if (typeof value !== 'number') throw invalidArgType('port', 'a number', value)
  const min = allowZero ? 0 : 1
  if (!Number.isInteger(value) || value < min || value > 65535) throw invalidArgValue('port', `must be an integer from ${min} to 65535`, value, true)
  return value
}

function pem (name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string') return value
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  throw invalidArgType(name, 'a PEM string or Buffer', value)
}

export interface CredentialInit {
  client: boolean
  cert?: unknown
  key?: unknown
  ca?: unknown
  verify: 'none' | 'builtin' | 'custom'
  requestClientCertificate?: boolean
  alpn: string[]
  settings: Record<string, number>
}

const clientConfigurations = new Map<string, NativeConfiguration>()
// Each libp2p node (node-msquic/libp2p) has a certificate of its own: many nodes in one process
// (tests, simulations, a benchmark's 32 dialers) would otherwise rebuild a TLS context per dial.
const CLIENT_CONFIGURATIONS = 64

/**
 * The client configuration for these options, shared by every connect() that uses the same ones:
 * a configuration holds a TLS context (with its CA store), far too costly to build per connection.
 * The few most recently used are kept.
 */
export function clientConfiguration (init: CredentialInit): NativeConfiguration {
  const key = JSON.stringify([init.alpn, init.verify, init.settings, String(init.cert ?? ''), String(init.key ?? ''),
    Array.isArray(init.ca) ? init.ca.map(String) : String(init.ca ?? '')])
  let configuration = clientConfigurations.get(key)
  if (configuration !== undefined) {
    clientConfigurations.delete(key)
  } else {
    configuration = createConfiguration(init)
    if (clientConfigurations.size >= CLIENT_CONFIGURATIONS) clientConfigurations.delete(clientConfigurations.keys().next().value as string)
  }
  clientConfigurations.set(key, configuration)
  return configuration
}

/**
 * Builds the native configuration. MsQuic loads credentials only from files (there is no
 * in-memory PEM credential), so the PEM text goes to 0600 files that are removed once loaded.
 */
export function createConfiguration (init: CredentialInit): NativeConfiguration {
  const cert = pem('cert', init.cert)
  const key = pem('key', init.key)
  const ca = Array.isArray(init.ca) ? init.ca.map((c, i) => pem(`ca[${i}]`, c)).join('\n') : pem('ca', init.ca)
  if ((cert === undefined) !== (key === undefined)) throw invalidArgValue(cert === undefined ? 'cert' : 'key', 'must be given together with ' + (cert === undefined ? 'key' : 'cert'), undefined)
  if (!init.client && cert === undefined) throw invalidArgValue('cert', 'is required to listen (see createSelfSignedCertificate())', undefined)

  const binding = runtime()
  const dir = mkdtempSync(join(tmpdir(), 'node-msquic-'))
  try {
    const file = (name: string, text: string | undefined): string | undefined => {
      if (text === undefined) return undefined
      const path = join(dir, name)
      writeFileSync(path, text, { mode: 0o600 })
      return path
    }
    return new binding.Configuration({
      client: init.client,
      alpn: init.alpn,
      certFile: file('cert.pem', cert),
      keyFile: file('key.pem', key),
      caFile: file('ca.pem', ca),
      verify: init.verify,
      requestClientCertificate: init.requestClientCertificate,
      settings: init.settings
    })
  } catch (error) {
    if (error instanceof QuicError) {
      throw new QuicError(QuicErrorCode.INVALID_CREDENTIALS, 'The certificate, key or CA could not be loaded: ' + error.message, { status: error.status, statusName: error.statusName, cause: error })
    }
    throw error
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
