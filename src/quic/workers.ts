/**
 * Spreading a listener's connections over worker threads. The main thread accepts and hands each
 * connection over with transfer(); each worker adopts its share with receiveConnections(). Every
 * event of a moved connection reaches the worker that adopted it, in order.
 */
import { parentPort, type MessagePort, type Worker } from 'node:worker_threads'
import { invalidArgType, invalidArgValue } from '../args.js'
import { QuicConnection, type QuicConnectionHandle } from './connection.js'
import type { QuicListener } from './listener.js'

const CONNECTION = 'node-msquic/connection'
const CLOSED = 'node-msquic/closed'

export interface DistributeOptions {
  /**
   * 'round-robin' (the default) takes the workers in turn; 'least-loaded' picks the worker with the
   * fewest open connections it was given.
   */
  strategy?: 'round-robin' | 'least-loaded'
}

/**
 * Accepts connections from `listener` and moves each to one of `workers`, until the listener
 * closes. The workers run receiveConnections().
 */
export async function distributeConnections (listener: QuicListener, workers: Worker[], options: DistributeOptions = {}): Promise<void> {
  if (!Array.isArray(workers) || workers.length === 0) throw invalidArgType('workers', 'a non-empty array of Worker', workers)
  const strategy = options.strategy ?? 'round-robin'
  if (strategy !== 'round-robin' && strategy !== 'least-loaded') throw invalidArgValue('strategy', "must be 'round-robin' or 'least-loaded'", strategy)
  const load = new Map<Worker, number>(workers.map(w => [w, 0]))
  const onMessage = (worker: Worker) => (message: unknown): void => {
    if ((message as { type?: string })?.type === CLOSED) load.set(worker, Math.max(0, (load.get(worker) ?? 1) - 1))
  }
  const listeners = workers.map(worker => {
    const handler = onMessage(worker)
    worker.on('message', handler)
    return () => worker.off('message', handler)
  })
  let turn = 0
  try {
    for await (const connection of listener) {
      const worker = strategy === 'round-robin'
        ? workers[turn++ % workers.length]
        : workers.reduce((best, w) => (load.get(w) ?? 0) < (load.get(best) ?? 0) ? w : best)
      load.set(worker, (load.get(worker) ?? 0) + 1)
      worker.postMessage({ type: CONNECTION, handle: connection.transfer() })
    }
  } finally {
    for (const remove of listeners) remove()
  }
}

/**
 * In a worker thread: adopts every connection distributeConnections() sends here and passes it to
 * `onConnection`. Tells the sender when each closes (for 'least-loaded'). Returns a function that
 * stops receiving.
 */
export function receiveConnections (onConnection: (connection: QuicConnection) => void, port: MessagePort | null = parentPort): () => void {
  if (port === null) throw new Error('receiveConnections() runs in a worker thread (or give it a MessagePort)')
  const handler = (message: unknown): void => {
    const { type, handle } = (message ?? {}) as { type?: string, handle?: QuicConnectionHandle }
    if (type !== CONNECTION || handle === undefined) return
    const connection = QuicConnection.adopt(handle)
    void connection.closed.then(() => port.postMessage({ type: CLOSED }))
    onConnection(connection)
  }
  port.on('message', handler)
  return () => { port.off('message', handler) }
}
