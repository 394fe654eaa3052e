/**
 * The packages discovery needs besides node-msquic (optional peer dependencies, so that raw QUIC
 * users install none of them), and the one error a missing one gives: ERR_DISCOVERY_NOT_CONFIGURED
 * naming the npm install line, never a raw ERR_MODULE_NOT_FOUND. Imports nothing of them itself.
 */
import { DiscoveryError, DiscoveryErrorCode } from './errors.js'

/**
 * What `npm install` needs beside node-msquic for discovery, at the majors package.json's
 * peerDependencies accept (a newer major would be refused by npm as a peer conflict). libp2p
 * brings the rest (@libp2p/interface, @libp2p/peer-id, @multiformats/multiaddr, multiformats...).
 */
export const DISCOVERY_PACKAGES = ['libp2p@3', '@libp2p/kad-dht@16', '@libp2p/identify@4', '@libp2p/ping@3'] as const

const bare = (spec: string): string => spec.slice(0, spec.lastIndexOf('@'))

/** Whether `name` resolves from node-msquic's own folder (as discovery's imports do). */
function installed (name: string): boolean {
  try {
    import.meta.resolve(name)
    return true
  } catch {
    return false
  }
}

/** The package a failed import names ("Cannot find package 'x'"), if it names one. */
function missingPackage (error: unknown): string | undefined {
  if ((error as { code?: string })?.code !== 'ERR_MODULE_NOT_FOUND') return undefined
  return /Cannot find package '([^']+)'/.exec((error as Error).message)?.[1]
}

/**
 * ERR_DISCOVERY_NOT_CONFIGURED for `what`, naming what is missing and the npm install line that
 * brings it (the packages above, plus any other that is missing although they are installed, as
 * a strict package manager leaves libp2p's own dependencies out of node-msquic's reach).
 */
function notInstalled (what: string, cause?: unknown): DiscoveryError {
  const missing = DISCOVERY_PACKAGES.map(bare).filter(name => !installed(name))
  const named = missingPackage(cause)
  const extra = named !== undefined && missing.length === 0 ? [named] : []
  const line = `npm install ${[...DISCOVERY_PACKAGES, ...extra].join(' ')}`
  return new DiscoveryError(DiscoveryErrorCode.NOT_CONFIGURED,
    `${what} needs libp2p, @libp2p/kad-dht, @libp2p/identify and @libp2p/ping installed beside node-msquic ` +
    `(missing: ${[...missing, ...extra].join(', ') || named || 'unknown'}); install them with: ${line}`, { cause })
}

/**
 * Runs `load` (dynamic imports of discovery's peers); a package it cannot find becomes
 * {@link notInstalled}'s error, other failures pass through.
 */
export async function loadPeers<T> (what: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (error) {
    if (missingPackage(error) !== undefined) throw notInstalled(what, error)
    throw error
  }
}
