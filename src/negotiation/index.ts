/**
 * Protocol negotiation on a stream: multistream-select 1.0 as libp2p specifies it, over any Node
 * Duplex (a QuicStream among them), byte for byte compatible with `@libp2p/multistream-select`.
 */
export { ProtocolRouter, BUSY_RESET_CODE, DEFAULT_NEGOTIATIONS, DEFAULT_NEGOTIATIONS_PER_CONNECTION, type ProtocolRouterOptions, type ProtocolRouterEvents, type ProtocolHandler, type HandleOptions } from './router.js'
export { dialProtocol, type DialProtocolOptions, type DialedProtocol } from './dial.js'
export { NegotiationMetrics, PHASE_BUCKETS, type NegotiationMetricsOptions, type NegotiationSnapshot, type NegotiationPhase, type PhaseHistogram } from './metrics.js'
export type { AdaptiveLimitOptions } from './adaptive.js'
export { selectProtocol, type SelectProtocolOptions } from './select.js'
export { acceptProtocol, MAX_PROPOSALS, type AcceptProtocolOptions } from './accept.js'
export { NEGOTIATION_TIMEOUT, type NegotiationOptions } from './session.js'
export {
  MULTISTREAM_PROTOCOL_ID, NA, LS, MAX_PROTOCOL_ID_LENGTH, MAX_MESSAGE_LENGTH, MAX_LENGTH_PREFIX,
  MessageDecoder, encodeMessage, encodeMessages, encodeProtocolList, checkProtocols
} from './message.js'
