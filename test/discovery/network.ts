/** Registries for the discovery tests: a bootstrap node and members on loopback, our transport. */
import { ServiceRegistry, type ServiceRegistryInit } from '../../src/discovery/index.js'

export class Network {
  readonly registries: ServiceRegistry[] = []
  bootstrapNode?: ServiceRegistry

  #starting?: Promise<ServiceRegistry>

  async bootstrap (init: ServiceRegistryInit = {}): Promise<ServiceRegistry> {
    this.#starting = ServiceRegistry.create(init)
    this.bootstrapNode = await this.#starting
    this.registries.push(this.bootstrapNode)
    return this.bootstrapNode
  }

  async member (init: ServiceRegistryInit = {}): Promise<ServiceRegistry> {
    // Members started at once share the one bootstrap node (each made its own before).
    const bootstrap = this.bootstrapNode ?? await (this.#starting ?? this.bootstrap())
    const registry = await ServiceRegistry.create({ bootstrap: [bootstrap.multiaddrs[0].toString()], ...init })
    this.registries.push(registry)
    return registry
  }

  async members (count: number, init: ServiceRegistryInit = {}): Promise<ServiceRegistry[]> {
    const out: ServiceRegistry[] = []
    // A few at a time: 2 cores, and each start dials the bootstrap node.
    for (let i = 0; i < count; i += 5) out.push(...await Promise.all(Array.from({ length: Math.min(5, count - i) }, async () => await this.member(init))))
    return out
  }

  async stop (): Promise<void> {
    this.#starting = undefined
    this.bootstrapNode = undefined
    await Promise.all(this.registries.splice(0).map(async r => { await r.stop() }))
  }
}
