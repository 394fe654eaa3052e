// What an addon file asks of the system it loads on, read with readelf (binutils; it reads ELF files
// of every architecture, where objdump and nm read only the host's). Used by scripts/check-prebuild.mjs
// and test/native/symbols.test.ts.
import { execFileSync } from 'node:child_process'

const readelf = (args, file) => execFileSync('readelf', ['-W', ...args, file], { encoding: 'utf8' })

/** The dynamic symbol table: name (without @version), and whether the file defines it. */
export function dynamicSymbols (file) {
  return parseDynamicSymbols(readelf(['--dyn-syms'], file))
}

/** The same from `readelf -W --dyn-syms`'s output (tests run readelf asynchronously and parse here). */
export function parseDynamicSymbols (text) {
  return text.split('\n')
    .map(line => line.trim().split(/\s+/))
    .filter(fields => fields.length >= 8 && /^\d+:$/.test(fields[0]))
    .map(fields => ({ name: fields[7].replace(/@.*$/, ''), defined: fields[6] !== 'UND' }))
    .filter(symbol => symbol.name !== '')
}

/** The libraries it needs (DT_NEEDED). */
export function neededLibraries (file) {
  return [...readelf(['--dynamic'], file).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map(match => match[1])
}

/** The symbol versions it needs (GLIBC_2.17, GLIBCXX_3.4.21, …): the newest per prefix, as [prefix, version]. */
export function newestVersions (file) {
  const newest = new Map()
  for (const [, prefix, version] of readelf(['--version-info'], file).matchAll(/Name: ([A-Z]+)_([0-9.]+)\s+Flags/g)) {
    if (!newest.has(prefix) || compareVersions(version, newest.get(prefix)) > 0) newest.set(prefix, version)
  }
  return newest
}

/** readelf's machine name: 'Advanced Micro Devices X86-64', 'AArch64'. */
export function machine (file) {
  return /Machine:\s+(.+)/.exec(readelf(['--file-header'], file))[1].trim()
}

/** Compares dotted versions numerically ('2.28' < '2.3' is false). */
export function compareVersions (a, b) {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return Math.sign(d)
  }
  return 0
}
