/**
 * node-msquic/limits: admission and quality of service. Loads no native code.
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
export { HISTOGRAM_BUCKETS, type Histogram } from './histogram.js'
