/** A seeded generator for the soaks: the same seed gives the same sequence of choices. */
export class Random {
  #state: number

  constructor (seed: number) {
    this.#state = (seed >>> 0) || 0x9e3779b9
  }

  /** An integer in [0, n). */
  int (n: number): number {
    // xorshift32
    let x = this.#state
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.#state = x >>> 0
    return this.#state % n
  }

  /** True with probability p. */
  chance (p: number): boolean {
    return this.int(1_000_000) < p * 1_000_000
  }

  pick<T> (items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  /** `n` bytes of a pattern that depends on `tag` (checked on the far side where echoed). */
  bytes (n: number, tag: number): Buffer {
    const out = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) out[i] = (tag + i) & 0xff
    return out
  }
}

/** Resolves after `ms` (0: the next turn of the event loop). */
export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** What every soak reports, whatever it drives. */
export interface SoakTotals {
  operations: number
  seconds: number
  /** Operations that did not finish within the watchdog: their plan and what their stream saw. */
  hung: string[]
  streams: { client: number, server: number }
  /** Errors the apps' 'error' handlers saw (and rejections they caught), by code. */
  errors: Record<string, number>
  /** Operations per plan. */
  plans: Record<string, number>
}

/**
 * Runs one operation under the soak's watchdog: whether it finished (failures included: `onError`
 * logs them) or hung past `watchdogMs`. The watchdog's timer never outlives the operation.
 */
export async function underWatchdog (operation: () => Promise<unknown>, watchdogMs: number, onError: (error: unknown) => void): Promise<'done' | 'hung'> {
  let timer: NodeJS.Timeout | undefined
  const watchdog = new Promise<'hung'>(resolve => { timer = setTimeout(() => { resolve('hung') }, watchdogMs) })
  try {
    return await Promise.race([operation().then(() => 'done' as const, (error: unknown) => { onError(error); return 'done' as const }), watchdog])
  } finally {
    clearTimeout(timer)
  }
}

/** Waits up to 10 s for `open` to empty (what is in flight settles), polling every 20 ms. */
export async function settleOpen (open: { size: number }): Promise<void> {
  const deadline = Date.now() + 10_000
  while (open.size > 0 && Date.now() < deadline) await sleep(20)
}

/**
 * Runs `operations` operations, `inFlight` at a time, each under the watchdog: `pick` names its
 * plan, `operation(name, index)` is what it does. What ran (per plan), what hung, and how long it took.
 */
export async function driveOperations (options: { operations: number, inFlight: number, watchdog: number }, pick: () => string, operation: (name: string, index: number) => Promise<unknown>, onError: (error: unknown) => void): Promise<{ plans: Record<string, number>, hung: string[], seconds: number }> {
  const plans: Record<string, number> = {}
  const hung: string[] = []
  const started = performance.now()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < options.operations) {
      const index = next++
      const name = pick()
      plans[name] = (plans[name] ?? 0) + 1
      if (await underWatchdog(async () => await operation(name, index), options.watchdog, onError) === 'hung') hung.push(`operation ${index}: ${name}`)
    }
  }
  await Promise.all(Array.from({ length: options.inFlight }, worker))
  return { plans, hung, seconds: (performance.now() - started) / 1000 }
}
