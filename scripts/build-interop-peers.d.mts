export const PEERS: string[]
export function cacheDir (): string
export function peerPaths (): Record<string, string>
export function buildPeers (options?: { only?: string[], quiet?: boolean }): Promise<Record<string, string>>
