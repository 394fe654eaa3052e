/**
 * node-msquic: QUIC for Node.js on Microsoft's MsQuic. The package's root: the QUIC layer
 * (src/quic: listeners, connections, the stream core and its adapters, credit, the request path),
 * protocol negotiation (src/negotiation) and the shared base (native.ts: the addon's one entry;
 * errors.ts, codes.ts, args.ts: the error base and code tables, the application codes on the wire,
 * the one validator). src/quic imports only that base; the layers above (negotiation, libp2p,
 * limits, discovery) import it, never the other way round.
 *
 * @example
 * ```ts
 * import { listen, connect, createSelfSignedCertificate } from 'node-msquic'
 * const { cert, key } = await createSelfSignedCertificate()
 * const listener = await listen({ port: 0, alpn: 'echo', cert, key })
 * const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'echo', ca: cert })
 * ```
 * @packageDocumentation
 */
export { listen, QuicListener, AdmissionRefusedCode, type ListenOptions, type ListenerStats, type IncomingConnection, type AdmitConnection } from './quic/listener.js'
export { connect, type ConnectOptions } from './quic/connect.js'
export { QuicConnection, type RequestHandler, type RequestInfo, type AcceptStreamOptions, type StreamAdapterFactory, type StreamLimits, type QuicCloseInfo, type OpenStreamOptions, type CloseOptions, type QuicConnectionEvents, type QuicConnectionStats, type QuicConnectionHandle } from './quic/connection.js'
export { QuicStream, type QuicStreamHandle } from './quic/stream.js'
export { StreamCredit, type StreamCreditEvents } from './quic/credit.js'
export { StreamCore, type StreamSink, type ReadState, type WriteState, type PrefixReader } from './quic/stream-core.js'
export {
  RequestResetCode, DEFAULT_MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES, DEFAULT_REQUEST_CONCURRENCY,
  type RequestOptions, type ServeRequestsOptions
} from './quic/request.js'
export { distributeConnections, receiveConnections, type DistributeOptions } from './quic/workers.js'
export { createSelfSignedCertificate, type SelfSignedOptions } from './quic/certificate.js'
export type { QuicSettings, TlsOptions, PeerCertificate, VerifyPeer } from './quic/config.js'
/** The QUIC layer's defaults, which the libp2p and discovery layers build on. */
export { DEFAULTS as QUIC_DEFAULTS } from './quic/config.js'
export {
  selectProtocol, selectProtocolLazily, acceptProtocol, MULTISTREAM_PROTOCOL_ID, MAX_PROTOCOL_ID_LENGTH, MAX_PROPOSALS, NEGOTIATION_TIMEOUT,
  type SelectProtocolOptions, type SelectLazilyOptions, type AcceptProtocolOptions, type NegotiationOptions,
  ProtocolRouter, dialProtocol, NegotiationMetrics, BUSY_RESET_CODE, DEFAULT_NEGOTIATIONS, DEFAULT_NEGOTIATIONS_PER_CONNECTION,
  type ProtocolRouterOptions, type ProtocolRouterEvents, type ProtocolHandler, type HandleOptions,
  type DialProtocolOptions, type DialedProtocol, type NegotiationMetricsOptions, type NegotiationSnapshot,
  type NegotiationPhase, type PhaseHistogram, type AdaptiveLimitOptions
} from './negotiation/index.js'
export { CodedError, QuicError, QuicErrorCode, NegotiationError, NegotiationErrorCode, NegotiationResetCode, type QuicErrorOptions, type NegotiationErrorOptions } from './errors.js'
export { StreamCode, ConnectionCode } from './codes.js'
export { promClientSink, libp2pSink, type MetricsSink, type Libp2pMetricsLike, type MetricOptions, type SinkCounter, type SinkGauge, type SinkHistogram } from './metrics.js'
export { setWorkerCount, getDeliveryStats } from './native.js'
export { trimMemory, setIdleTrim } from './quic/memory.js'
