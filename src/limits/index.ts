/**
 * node-msquic/limits: admission and quality of service. Loads no native code.
 *
 * A bottom layer, beside src/quic: it may import only the package root's shared modules
 * (errors.ts, args.ts, metrics.ts) and Node, never src/quic, src/negotiation, src/libp2p or
 * src/discovery; those layers build on it (the negotiation limiter and the dialer's slots wait on
 * its {@link Semaphore}, the libp2p transport holds its reservations). Keys are plain values (a
 * connection's id), so nothing here needs the QUIC types.
 *
 * - {@link TransientConnectionManager}: a budget for connections that are not peers yet.
 * - {@link OperationLimiter}: one capacity shared by classes with guarantees and ceilings.
 * - {@link ProviderPool}: provider connections behind one limiter (permit first, then routing).
 * - {@link Semaphore}: the one abortable FIFO semaphore the limits of every layer wait on.
 *
 * @example
 * ```ts
 * import { OperationLimiter, ProviderPool } from 'node-msquic/limits'
 * const limiter = new OperationLimiter({
 *   capacity: 145,
 *   classes: { queue: { guaranteed: 30 }, healthCheck: { guaranteed: 60, ceiling: 60 }, streaming: { guaranteed: 55 } }
 * })
 * const pool = new ProviderPool({ limiter, providers: [
 *   { id: 'a', maxConnections: 95, connect: () => openConnectionTo('a') },
 *   { id: 'b', maxConnections: 50, connect: () => openConnectionTo('b') }
 * ] })
 * const article = await pool.run('streaming', connection => fetchArticle(connection, id))
 * ```
 * @packageDocumentation
 */
export {
  TransientConnectionManager, Reservation,
  type TransientConnectionManagerOptions, type TransientEvents, type TransientStats, type ReservationMeta,
  type ReservationOutcome, type ReservationState, type ReservationKey, type RejectReason
} from './transient.js'
export {
  OperationLimiter, Permit,
  type OperationLimiterOptions, type OperationClassOptions, type OperationLimiterStats, type OperationClassStats
} from './operation-limiter.js'
export {
  ProviderPool,
  type ProviderPoolOptions, type ProviderOptions, type ProviderStats, type ProviderPoolStats, type RunContext
} from './provider-pool.js'
export { Semaphore, type Release, type SemaphoreWaiter, type SemaphoreOptions, type DropReason } from './semaphore.js'
export { LimitsError, LimitsErrorCode } from './errors.js'
export { systemClock, type Clock } from './clock.js'
export {
  HISTOGRAM_BUCKETS, promClientSink, libp2pSink,
  type Histogram, type MetricsSink, type MetricOptions, type SinkCounter, type SinkGauge, type SinkHistogram
} from '../metrics.js'
