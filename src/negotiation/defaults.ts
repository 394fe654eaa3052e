/**
 * Protocol negotiation's defaults, defined once: the router, dialProtocol() and the libp2p
 * transport import them from here.
 */

/**
 * Negotiations at once per connection, and over all connections. Measured on a 2-core machine
 * (bench/negotiation.mjs): beyond about 8 per connection and 64 overall, time-to-negotiated grows
 * with no gain in negotiations per second.
 */
export const DEFAULT_NEGOTIATIONS_PER_CONNECTION = 8
export const DEFAULT_NEGOTIATIONS = 64

/** The default limit for a whole negotiation, in milliseconds (js-libp2p's default as well). */
export const NEGOTIATION_TIMEOUT = 10_000

/**
 * The default cap on the dialer's messages after its header (proposals and `ls`): a dialer
 * refused with `na` forever is cut off rather than held. js-libp2p's dialer tries each of its
 * protocols once, and real lists are short.
 */
export const MAX_PROPOSALS = 32
