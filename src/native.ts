/**
 * Loads the addon and describes its surface. Every other module depends on these types, not on
 * the `.node` file. The runtime (MsQuic registration, event queue) opens lazily on first use.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { invalidArgType, invalidArgValue, invalidState } from './args.js'
import { errorFromStatus } from './errors.js'

/** Fields shared by the native events; see native/core/event.h. */
export type EventHandler = (type: number, status: number, value: number | bigint, code: number | bigint, extra: unknown) => void

/** The method by which the owner of a native handle hears its events (never public API). */
export const kOnNativeEvent = Symbol('onNativeEvent')

/** What owns a native handle: the one object its events go to. */
export interface NativeOwner {
  [kOnNativeEvent]: EventHandler
}

/** Every native wrapper carries the TS object that handles its events. */
export interface NativeHandle {
  owner?: NativeOwner
}

/** An MsQuic configuration (ALPN, settings, credentials); opaque to TS. */
export interface NativeConfiguration {
  readonly __configuration?: never
}

export interface NativeListener extends NativeHandle {
  address(): { address: string, family: 'IPv4' | 'IPv6', port: number } | null
  stop(): void
  stats(): {
    handshaking: number
    established: number
    refusedHandshakes: number
    refusedBacklog: number
    refusedAdmission: number
    retrying: boolean
    accepted?: number
    rejected?: number
    droppedPackets?: number
  }
  /** New connections serve requests (collected natively up to `limit` bytes, `concurrency` at once); 0: off. */
  serveRequests(limit: number, concurrency: number): void
}

export interface NativeAddress { address: string, family: 'IPv4' | 'IPv6', port: number }

/** A connection's figures, as MsQuic reports them (QuicConnection.stats() adds its open streams). */
export interface NativeConnectionStats {
  /** Smoothed round-trip time, and its minimum, maximum and variance, in microseconds. */
  rttUs: number
  minRttUs: number
  maxRttUs: number
  rttVarianceUs: number
  /** Congestion window in bytes, and how many congestion events there were. */
  congestionWindow: number
  congestionEvents: number
  /** Current path MTU. */
  pathMtu: number
  /** UDP payload bytes, and stream payload bytes, each way. */
  bytesSent: number
  bytesReceived: number
  streamBytesSent: number
  streamBytesReceived: number
  /** QUIC packets each way, lost (suspected minus spurious) and received out of order. */
  packetsSent: number
  packetsReceived: number
  packetsLost: number
  packetsReordered: number
  /** How long the handshake took, in microseconds. */
  handshakeUs: number
  /** Received datagrams dropped because the app had too many waiting. */
  datagramsDropped: number
}

export interface NativeConnection extends NativeHandle {
  shutdown(code: number | bigint, silent: boolean): void
  /**
   * Opens and starts a stream. With `data` it starts with those bytes (and FIN if `fin`) in the
   * same MsQuic call; `collectLimit` > 0 then collects the reply natively (a StreamMessage event).
   */
  openStream(unidirectional: boolean, data?: Uint8Array, fin?: boolean, collectLimit?: number): NativeStream
  /** The peer's bidirectional streams from now on are requests collected up to `limit` bytes; 0: off. */
  serveRequests(limit: number): void
  setPeerStreamCounts(bidirectional: number, unidirectional: number): void
  completeCertificateValidation(accept: boolean): boolean
  taken(): void
  /** Deferred admission: starts the handshake, or refuses with `code`; false if the connection is gone. */
  admit(accept: boolean, code: bigint): boolean
  /** Server side: the addresses and server name of the client's first packet. */
  peer(): { localAddress: NativeAddress, remoteAddress: NativeAddress, serverName?: string }
  info(): { alpn: string, serverName?: string, sessionResumed: boolean, localAddress: NativeAddress, remoteAddress: NativeAddress, server: boolean, maxDatagramSize: number }
  stats(): NativeConnectionStats
  /** Copies and queues one datagram; false when the send queue is full (nothing sent). */
  sendDatagram(data: Uint8Array): boolean
  /** Client: whether streams send 0-RTT data before the handshake completes (asked for, and the ticket was usable). */
  earlyData(): boolean
  /** Starts a connection prepared for early data (whose streams were queued first). */
  start(): void
}

/** What NativeStream.send() did. */
export const SendResult = {
  Sent: 0,
  /** Sent, and the send window is now full: StreamSendReady follows when there is room. */
  Full: 1,
  /** Refused: the send direction has ended; the events that say why are on their way. */
  Ended: 2
} as const
export type SendResult = typeof SendResult[keyof typeof SendResult]

export interface NativeStream extends NativeHandle {
  /** Copies and sends; `taken` also ends the hold on a peer stream (see taken()), in the same call. */
  send(data: Uint8Array | undefined, fin: boolean, taken?: boolean): SendResult
  shutdown(flags: number, code: number | bigint): boolean
  consumed(bytes: number): void
  taken(): void
  id(): number | null
  unidirectional(): boolean
  /** Asks for StreamSendShutdownComplete as it happens; true if the acknowledgement came already. */
  reportAcknowledged(): boolean
}

export interface ConfigurationInit {
  client: boolean
  alpn: string[]
  certFile?: string
  keyFile?: string
  caFile?: string
  verify: 'none' | 'builtin' | 'custom'
  requestClientCertificate?: boolean
  settings: Record<string, number>
}

export interface NativeBinding {
  init(dispatch: (batch: unknown[]) => void, makeError: (name: string, status: number, message: string) => Error, workers: number): void
  createSelfSignedCertificate(hosts: string[], days: number): { cert: string, key: string }
  statusName(status: number): string
  /** Calls from JS into native streams and connections so far (this thread). */
  nativeCalls(): number
  /** glibc's malloc_trim(0): returns free memory of every arena to the system; false elsewhere. */
  trimMemory(): boolean
  /** Parks a connection, with the peer streams its app has not accepted, for another thread. */
  transferConnection(connection: NativeConnection, streams: NativeStream[]): number
  /** The adopted connection, then the streams that travelled with it. */
  adoptConnection(id: number): [NativeConnection, ...NativeStream[]]
  /** Splits a stream off its connection's route so that it stays on this thread when the connection moves. */
  keepStream(stream: NativeStream): void
  /** Parks one stream for another thread; its connection stays here. */
  transferStream(stream: NativeStream): number
  adoptStream(id: number): NativeStream
  /** The numbers both layers agree on (native/core/event.h), read once at load. */
  constants: NativeConstants
  Configuration: new (init: ConfigurationInit) => NativeConfiguration
  /** `retryAbove` -1: never. With `deferAdmission`, each connection waits for admit() before its handshake. */
  Listener: new (configuration: NativeConfiguration, ip: string, port: number, backlog: number, budget: number, datagramQueue: number,
    maxHandshakes: number, retryAbove: number, deferAdmission: boolean) => NativeListener
  Connection: new (configuration: NativeConfiguration, ip: string, port: number, serverName: string, expectedHost: string, budget: number, datagramQueue: number, sessionTicket?: Buffer, earlyData?: boolean) => NativeConnection
}

/** The constants the addon exports (native/core/event.h and MsQuic's flags). */
export interface NativeConstants {
  events: Record<EventName, number>
  shutdownFlags: { HandshakeCompleted: number, PeerAcknowledged: number, ClosedRemotely: number, ConnectionShutdown: number, SendAcknowledged: number }
  peerStream: { Unidirectional: number, Request: number }
  streamShutdown: { Graceful: number, AbortSend: number, AbortReceive: number, Abort: number, Immediate: number }
  messageTooLargeCode: number
  batchStride: number
}

type EventName = 'ListenerStopped' | 'ListenerConnection' | 'ConnectionConnected' | 'ConnectionShutdownByTransport' |
  'ConnectionShutdownByPeer' | 'ConnectionShutdownComplete' | 'ConnectionPeerStream' | 'ConnectionStreamsAvailable' |
  'ConnectionPeerNeedsStreams' | 'ConnectionPeerCertificate' | 'StreamStartComplete' | 'StreamPeerAccepted' | 'StreamData' |
  'StreamPeerSendShutdown' | 'StreamPeerSendAborted' | 'StreamPeerReceiveAborted' | 'StreamSendReady' |
  'StreamShutdownComplete' | 'ConnectionDatagramState' | 'ConnectionDatagram' | 'StreamSendShutdownComplete' | 'StreamMessage' |
  'ConnectionDatagramDrain' | 'ConnectionResumptionTicket' | 'ConnectionPeerAddressChanged' | 'ConnectionStartFailed'

/**
 * The addon file: a local build (build/Release) first, else the prebuild for this platform,
 * architecture and libc (prebuilds/), as node-gyp-build resolves them. scripts/install.mjs loads
 * this module to decide whether a source build is needed.
 */
function locate (): string {
  // A different build of the addon, e.g. the sanitizer build (scripts/test-sanitized.mjs).
  if (process.env.NODE_MSQUIC_ADDON !== undefined) return process.env.NODE_MSQUIC_ADDON
  let found: string
  try {
    found = nodeGypBuild.resolve(join(dirname(fileURLToPath(import.meta.url)), '..'))
  } catch (error) {
    throw new Error('node-msquic: no native addon for this system; build it from source with `npm rebuild ' +
      'node-msquic --foreground-scripts` (in a clone: `npm run build:native`)', { cause: error })
  }
  // node-gyp-build tells musl from glibc only by /etc/alpine-release or LIBC=musl: on any other musl
  // system (Void, Chimera, a musl Node in a glibc image) it picks the glibc prebuild, which cannot load
  // there. The musl one beside it can.
  const musl = found.replace(/\.glibc\.node$/, '.musl.node')
  return musl !== found && process.env.LIBC === undefined && !runsOnGlibc() && existsSync(musl) ? musl : found
}

/**
 * Whether this process runs on glibc: its libc.so.6 is mapped (0.3 ms to read); if not (musl, or a
 * static build), Node's report names the glibc it was started on, if any (10 ms or so, so second).
 */
function runsOnGlibc (): boolean {
  try {
    if (/\/libc(\.so\.6|-2\.\d+\.so)$/m.test(readFileSync('/proc/self/maps', 'utf8'))) return true
  } catch {}
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return report?.header?.glibcVersionRuntime !== undefined
}

const require = createRequire(import.meta.url)
const nodeGypBuild: { resolve: (dir: string) => string } = require('node-gyp-build')
/** The addon file this process loaded. */
export const addonFile = locate()
export const native: NativeBinding = require(addonFile)

/** Event type numbers, from the addon (native/core/event.h). */
export const Ev = native.constants.events
/** Bits of `value` in the shutdown-complete events. */
export const ShutdownFlag = native.constants.shutdownFlags
/** Bits of `value` in the ConnectionPeerStream event. */
export const PeerStreamFlag = native.constants.peerStream
/** MsQuic's QUIC_STREAM_SHUTDOWN_FLAGs. */
export const StreamShutdown = native.constants.streamShutdown
const STRIDE = native.constants.batchStride

const delivery = { wakeups: 0, events: 0 }

/**
 * How native events have reached JS in this thread so far: `wakeups` (batches handed over by the
 * native queue) and `events`; `events / wakeups` is the batching achieved under load.
 * `nativeCalls` counts the calls from JS into native streams and connections.
 */
export function getDeliveryStats (): { wakeups: number, events: number, nativeCalls: number } {
  return { ...delivery, nativeCalls: native.nativeCalls() }
}

/**
 * Runs every event of one native wake-up, in order. An exception from user code must not stop the
 * batch (the rest would be lost), so each is caught and rethrown on its own tick.
 */
let dispatching = false

/** Whether native events are being handed to JS right now (a connection cannot move then). */
export function isDispatching (): boolean {
  return dispatching
}

function dispatch (batch: unknown[]): void {
  dispatching = true
  try {
    dispatchBatch(batch)
  } finally {
    dispatching = false
  }
}

function dispatchBatch (batch: unknown[]): void {
  delivery.wakeups++
  delivery.events += batch.length / STRIDE
  for (let i = 0; i < batch.length; i += STRIDE) {
    const target = batch[i] as NativeHandle
    try {
      target.owner?.[kOnNativeEvent](batch[i + 1] as number, batch[i + 2] as number, batch[i + 3] as number | bigint, batch[i + 4] as number | bigint, batch[i + 5])
    } catch (error) {
      process.nextTick(() => { throw error })
    }
  }
}

let started = false
let workers = 0

/**
 * Sets how many MsQuic worker threads to start (default: `os.availableParallelism()`). Takes effect
 * only before the first listener or connection of the process.
 */
export function setWorkerCount (count: number): void {
  if (typeof count !== 'number') throw invalidArgType('count', 'a number', count)
  if (!Number.isInteger(count) || count < 1 || count > 1024) throw invalidArgValue('count', 'must be an integer from 1 to 1024', count, true)
  if (started) {
    throw invalidState('setWorkerCount() must be called before the first listen() or connect()')
  }
  workers = count
}

/** Opens this environment's runtime on first use; returns the binding. */
export function runtime (): NativeBinding {
  if (!started) {
    native.init(dispatch, (name, status, message) => errorFromStatus(name, status, message), workers || availableParallelism())
    started = true
  }
  return native
}
