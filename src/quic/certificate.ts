/** createSelfSignedCertificate(): development and test credentials. */
import { isIP } from 'node:net'
import { checkOptions, invalidArgType, invalidArgValue } from '../args.js'
import { native } from '../native.js'

export interface SelfSignedOptions {
  /** DNS names and IP addresses the certificate names. Default ['localhost', '127.0.0.1', '::1']. */
  hosts?: string[]
  /** Validity in days. Default 30. */
  days?: number
}

/**
 * A fresh ECDSA P-256 key and a self-signed certificate for `hosts`, both PEM. The certificate is a
 * leaf (CA:FALSE; digitalSignature; serverAuth and clientAuth; subjectAltName from `hosts`): pass it as
 * `ca` to connect() to trust it, as rustls, quic-go, aioquic and OpenSSL peers also accept it.
 */
export async function createSelfSignedCertificate (options: SelfSignedOptions = {}): Promise<{ cert: string, key: string }> {
  checkOptions(options)
  const hosts = options.hosts ?? ['localhost', '127.0.0.1', '::1']
  if (!Array.isArray(hosts) || hosts.length === 0) throw invalidArgType('hosts', 'a non-empty array of strings', hosts)
  for (const host of hosts) {
    if (typeof host !== 'string' || host === '') throw invalidArgType('hosts', 'a non-empty array of strings', host)
    if (isIP(host) === 0 && !/^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) throw invalidArgValue('hosts', 'entries must be DNS names or IP addresses', host)
  }
  const days = options.days ?? 30
  if (!Number.isInteger(days) || days < 1 || days > 36500) throw invalidArgValue('days', 'must be an integer from 1 to 36500', days, true)
  return native.createSelfSignedCertificate(hosts, days)
}
