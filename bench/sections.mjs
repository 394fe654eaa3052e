// BENCHMARKS.md is written by several benchmarks: bench/run.mjs writes the main part, and each
// other benchmark its own section between `<!-- name:begin -->` and `<!-- name:end -->` markers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const benchmarksFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'BENCHMARKS.md')

const markers = name => [`<!-- ${name}:begin -->`, `<!-- ${name}:end -->`]

/** Replaces (or appends) the section `name` of BENCHMARKS.md with `markdown`. */
export function writeSection (name, markdown) {
  const [begin, end] = markers(name)
  const section = `${begin}\n${markdown.trim()}\n${end}`
  const text = existsSync(benchmarksFile) ? readFileSync(benchmarksFile, 'utf8') : ''
  const start = text.indexOf(begin)
  const stop = text.indexOf(end)
  writeFileSync(benchmarksFile, start === -1 || stop === -1
    ? `${text.trimEnd()}\n\n${section}\n`
    : text.slice(0, start) + section + text.slice(stop + end.length))
}

/** Writes `section`, which starts with its `<!-- name:begin -->` marker and ends with its end marker. */
export function writeMarkedSection (section) {
  const match = /^<!-- ([\w-]+):begin -->\n([\s\S]*)\n<!-- \1:end -->$/.exec(section.trim())
  if (match === null) throw new Error('a BENCHMARKS.md section must start and end with its markers')
  writeSection(match[1], match[2])
}

/** Every marked section of the current BENCHMARKS.md, in order (kept when bench/run.mjs rewrites it). */
export function markedSections () {
  if (!existsSync(benchmarksFile)) return []
  const text = readFileSync(benchmarksFile, 'utf8')
  return [...text.matchAll(/<!-- ([\w-]+):begin -->[\s\S]*?<!-- \1:end -->/g)].map(match => match[0])
}
