// Where a process's resolves spent their time, for bench/discovery-load.mjs: an OpenTelemetry tracer
// (the SDK is a devDependency; the library only uses @opentelemetry/api) keeps the phases of every
// `discovery.resolve` span (ResolveTimes: search, queued, connect, negotiate, exchange, verify), and a
// 10 ms timer measures how late the event loop runs it (the longest delay since the last reading).
import { trace } from '@opentelemetry/api'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'

const PHASES = ['search', 'queued', 'connect', 'negotiate', 'exchange', 'verify']
let spans = []
let maxLag = 0
let last = performance.now()

/** Starts recording; call before the registries are made (they load the tracing API at creation). */
export function startProbe () {
  const processor = {
    onStart () {},
    onEnd (span) {
      if (span.name !== 'discovery.resolve') return
      const a = span.attributes
      const entry = { outcome: a['discovery.outcome'], lookup: a['discovery.lookup'], via: a['discovery.via'] }
      for (const phase of PHASES) if (a[`discovery.${phase}_ms`] !== undefined) entry[phase] = a[`discovery.${phase}_ms`]
      spans.push(entry)
    },
    async forceFlush () {},
    async shutdown () {}
  }
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [processor] }))
  last = performance.now()
  setInterval(() => {
    const now = performance.now()
    maxLag = Math.max(maxLag, now - last - 10)
    last = now
  }, 10).unref()
}

/** The resolve spans ended since the last call, and the longest event-loop delay meanwhile (ms). */
export function takeProbe () {
  // (A delay still going on counts too: a loop busy for the whole cell never ran the timer.)
  const out = { spans, maxLag: Math.max(maxLag, performance.now() - last - 10) }
  spans = []
  maxLag = 0
  return out
}

export { PHASES }
