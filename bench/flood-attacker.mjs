#!/usr/bin/env node
// The attacker of bench/flood.mjs, in a process of its own:
//   node bench/flood-attacker.mjs <port> <alpn> <replays> <stalled> <wrongAlpn>
// Starts handshakes that never complete against 127.0.0.1:<port>: <replays> copies of one real
// client Initial, each from a fresh UDP socket (a new "client" to the server each time); <stalled>
// real clients whose certificate check never answers; <wrongAlpn> clients offering an ALPN the
// server does not speak. Prints one JSON line once everything was sent, then sends the Initials
// again from the same sockets every 200 ms (a sustained flood) until SIGTERM.
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { connect } from '../dist/index.js'

const [port, alpn, replays, stalled, wrongAlpn] = [Number(process.argv[2]), process.argv[3], ...process.argv.slice(4, 7).map(Number)]
const started = performance.now()

// One real Initial, caught on a socket that never answers.
const trap = createSocket('udp4')
trap.bind(0, '127.0.0.1')
await once(trap, 'listening')
const capture = new AbortController()
const attempt = connect({ host: '127.0.0.1', port: trap.address().port, alpn, signal: capture.signal }).catch(() => {})
const [initial] = await once(trap, 'message')
capture.abort()
await attempt
trap.close()

const never = new AbortController()
const clients = []
for (let i = 0; i < stalled; i++) {
  clients.push(connect({ host: '127.0.0.1', port, alpn, signal: never.signal, verifyPeer: async () => await new Promise(() => {}) }).catch(() => {}))
}
for (let i = 0; i < wrongAlpn; i++) clients.push(connect({ host: '127.0.0.1', port, alpn: 'not-' + alpn, signal: never.signal }).catch(() => {}))

const sockets = []
const replies = { retry: 0, handshake: 0 }
for (let sent = 0; sent < replays; sent += 50) {
  const batch = Array.from({ length: Math.min(50, replays - sent) }, () => createSocket('udp4'))
  for (const socket of batch) {
    socket.on('error', () => {})
    socket.once('message', reply => { if ((reply[0] & 0x30) === 0x30) replies.retry++; else replies.handshake++ })
    socket.bind(0, '127.0.0.1')
  }
  await Promise.all(batch.map(async socket => await once(socket, 'listening')))
  for (const socket of batch) socket.send(initial, port, '127.0.0.1')
  sockets.push(...batch)
  await new Promise(resolve => setImmediate(resolve))
}
console.log(JSON.stringify({ sent: replays + stalled + wrongAlpn, ms: Math.round(performance.now() - started) }))
let resent = 0
const again = setInterval(() => {
  for (const socket of sockets) socket.send(initial, port, '127.0.0.1')
  resent += sockets.length
}, 200)
process.on('SIGTERM', () => {
  clearInterval(again)
  console.log(JSON.stringify({ replies, resent }))
  never.abort()
  for (const socket of sockets) socket.close()
  setTimeout(() => process.exit(0), 100)
})
