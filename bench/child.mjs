// Runs one measurement in a process of its own and prints it as one JSON line:
//   node bench/child.mjs <impl> <workload> '<params as JSON>'
const [impl, workload, params] = process.argv.slice(2)
const module = await import(`./impl/${impl}.mjs`)
if (typeof module[workload] !== 'function') {
  console.log(JSON.stringify({ impl, workload, params: JSON.parse(params), skipped: 'not applicable' }))
  process.exit(0)
}
const metrics = await module[workload](JSON.parse(params))
console.log(JSON.stringify({ impl, workload, params: JSON.parse(params), metrics }))
process.exit(0)
