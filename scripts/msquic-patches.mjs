// Our patches to MsQuic's sources (deps/msquic/patches/*.patch, unified diffs relative to the
// source root, applied in name order). A small applier of our own: no `patch` or git needed on the
// machine that builds. Each hunk must match exactly (context and removed lines), at the line it
// names or anywhere else in the file; a hunk that matches nowhere stops the build.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** The patch files, in order, with their text. */
export function patches (dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter(name => name.endsWith('.patch')).sort().map(name => ({ name, text: readFileSync(join(dir, name), 'utf8') }))
}

/** One line naming the patch set (empty when there is none): it goes into the build's cache key. */
export function patchesId (list) {
  if (list.length === 0) return ''
  const hash = createHash('sha256')
  for (const { name, text } of list) hash.update(name).update('\0').update(text).update('\0')
  return `${list.map(p => p.name).join(',')} ${hash.digest('hex').slice(0, 16)}`
}

/** Parses a unified diff into files and hunks (a blank line inside a hunk is a blank context line). */
function parse (text, name) {
  const files = []
  let file
  let hunk
  let left = { old: 0, new: 0 }
  for (const line of text.split('\n')) {
    if (hunk !== undefined && (left.old > 0 || left.new > 0)) {
      const kind = line === '' ? ' ' : line[0]
      if (kind !== ' ' && kind !== '-' && kind !== '+') {
        if (kind === '\\') continue  // "\ No newline at end of file": the files we patch all end with one
        throw new Error(`${name}: a hunk for ${file.path} (line ${hunk.at}) ends early`)
      }
      const body = line.slice(1)
      if (kind !== '+') { hunk.old.push(body); left.old-- }
      if (kind !== '-') { hunk.new.push(body); left.new-- }
      continue
    }
    if (line.startsWith('+++ ')) {
      file = { path: line.slice(4).trim().replace(/^b\//, ''), hunks: [] }
      files.push(file)
    } else if (line.startsWith('@@ ')) {
      const match = /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line)
      if (match === null || file === undefined) throw new Error(`${name}: bad hunk header: ${line}`)
      hunk = { at: Number(match[1]), old: [], new: [] }
      left = { old: Number(match[2] ?? 1), new: Number(match[3] ?? 1) }
      file.hunks.push(hunk)
    }
  }
  return files
}

function matchesAt (lines, old, index) {
  if (index < 0 || index + old.length > lines.length) return false
  for (let i = 0; i < old.length; i++) if (lines[index + i] !== old[i]) return false
  return true
}

/** Applies every patch to the tree at `root`. Throws, naming the hunk, if one does not apply. */
export function applyPatches (root, list) {
  for (const { name, text } of list) {
    for (const file of parse(text, name)) {
      const path = join(root, file.path)
      const lines = readFileSync(path, 'utf8').split('\n')
      let shift = 0
      for (const hunk of file.hunks) {
        let index = hunk.at - 1 + shift
        if (!matchesAt(lines, hunk.old, index)) {
          index = lines.findIndex((_, i) => matchesAt(lines, hunk.old, i))
          if (index === -1) throw new Error(`${name}: a hunk for ${file.path} (line ${hunk.at}) does not apply`)
        }
        lines.splice(index, hunk.old.length, ...hunk.new)
        shift = index - (hunk.at - 1) + hunk.new.length - hunk.old.length
      }
      writeFileSync(path, lines.join('\n'))
    }
  }
}
