/**
 * Protocol negotiation on a stream: multistream-select 1.0 as libp2p specifies it, over any Node
 * Duplex (a QuicStream among them), byte for byte compatible with `@libp2p/multistream-select`.
 * One engine (engine.ts: the listener and the dialer as state machines without I/O) driven on a
 * Duplex (session.ts) and on a stream core's prefix reader (prefix.ts); one limiter (limiter.ts)
 * for negotiations at once. This folder may import src/quic and src/errors.ts, never the layers
 * built on it (src/libp2p, src/discovery).
 */
export { ProtocolRouter, BUSY_RESET_CODE, type ProtocolRouterOptions, type ProtocolRouterEvents, type ProtocolHandler, type HandleOptions } from './router.js'
export { DEFAULT_NEGOTIATIONS, DEFAULT_NEGOTIATIONS_PER_CONNECTION, NEGOTIATION_TIMEOUT, MAX_PROPOSALS } from './defaults.js'
export { dialProtocol, type DialProtocolOptions, type DialedProtocol } from './dial.js'
export { NegotiationMetrics, PHASE_BUCKETS, type NegotiationMetricsOptions, type NegotiationSnapshot, type NegotiationPhase, type PhaseHistogram } from './metrics.js'
export type { AdaptiveLimitOptions } from './adaptive.js'
export { NegotiationLimiter, ConnectionShare, type NegotiationLimits, type NegotiationLimiterOptions, type SlotRequest } from './limiter.js'
export { MultistreamListener, MultistreamDialer, type NegotiationMachine, type NegotiationStep, type ListenerMachineOptions } from './engine.js'
export { selectProtocol, type SelectProtocolOptions } from './select.js'
export { selectProtocolLazily, type SelectLazilyOptions } from './lazy.js'
export { acceptProtocol, type AcceptProtocolOptions } from './accept.js'
export type { NegotiationOptions } from './session.js'
export {
  MULTISTREAM_PROTOCOL_ID, NA, LS, MAX_PROTOCOL_ID_LENGTH, MAX_MESSAGE_LENGTH, MAX_LENGTH_PREFIX,
  MessageDecoder, encodeMessage, encodeMessages, encodeProtocolList, checkProtocols
} from './message.js'
