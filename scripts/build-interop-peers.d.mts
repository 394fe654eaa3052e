export interface Toolchain { version: string[], missing: string }
export interface PeerEntry {
  name: string
  source: string
  toolchain: Toolchain
  build: (context: { source: string, out: string, cache: string, run: (command: string, args: string[], options?: { cwd?: string, env?: Record<string, string> }) => Promise<void> }) => Promise<void>
  tests: string[]
}
export interface FoundPeer { name: string, path: string, built: boolean, missing?: string }
export interface BuildResult extends FoundPeer { state: 'cached' | 'built' | 'no-toolchain' | 'failed', detail?: string }
export const PEERS: PeerEntry[]
export const inCi: boolean
export function cacheDir (): string
export function childEnv (extra?: Record<string, string>): NodeJS.ProcessEnv
export function findPeer (name: string): Promise<FoundPeer>
export function buildPeers (options?: { only?: string[], say?: (message: string) => void, heartbeat?: number }): Promise<BuildResult[]>
