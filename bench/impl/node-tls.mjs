// node:tls over TCP: what most Node services use today. TCP has no streams, so "a stream per
// request" becomes a framed request on one TLS connection: up to `concurrency` in flight, each a
// 4-byte id and the payload, answered in order.
import { once } from 'node:events'
import { connect as tlsConnect, createServer } from 'node:tls'
import { createSelfSignedCertificate } from '../../dist/index.js'
import { CHUNK, MiB, mainThreadCpuMs, measureIdle, runOps } from '../lib.mjs'
import { summarise } from './node-msquic.mjs'

async function setup (onSocket) {
  const { cert, key } = await createSelfSignedCertificate({ hosts: ['127.0.0.1'] })
  const server = createServer({ cert, key, minVersion: 'TLSv1.3' }, onSocket)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const dial = async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: server.address().port, ca: cert, servername: '127.0.0.1', minVersion: 'TLSv1.3' })
    await once(socket, 'secureConnect')
    return socket
  }
  return { server, dial }
}

async function write (socket, total) {
  for (let sent = 0; sent < total; sent += CHUNK.length) {
    if (!socket.write(CHUNK)) await once(socket, 'drain')
  }
}

async function count (socket, total) {
  let received = 0
  for await (const chunk of socket) {
    received += chunk.length
    if (received >= total) break
  }
  return received
}

export async function bulk ({ bytes, direction }) {
  let serverReceived = 0
  let done
  const finished = new Promise(resolve => { done = resolve })
  const { server, dial } = await setup(socket => {
    socket.on('error', () => {})
    if (direction === 'up') {
      socket.on('data', chunk => { serverReceived += chunk.length; if (serverReceived >= bytes) done() })
    } else {
      void write(socket, bytes)
    }
  })
  const socket = await dial()
  const cpu = mainThreadCpuMs()
  const begin = performance.now()
  let received
  if (direction === 'up') {
    await write(socket, bytes)
    await finished
    received = serverReceived
  } else {
    received = await count(socket, bytes)
  }
  const seconds = (performance.now() - begin) / 1000
  const cpuMs = mainThreadCpuMs() - cpu
  socket.destroy()
  server.close()
  if (received !== bytes) throw new Error(`bulk: ${received} of ${bytes} bytes arrived`)
  return { mibPerSecond: bytes / MiB / seconds, seconds, mainThreadCpuMsPerMiB: cpuMs / (bytes / MiB) }
}

export async function echo ({ streams, concurrency, size, timeoutMs }) {
  const frame = 4 + size
  const { server, dial } = await setup(socket => {
    socket.on('error', () => {})
    socket.pipe(socket)  // frames come back byte for byte, in order
  })
  const socket = await dial()
  const waiting = new Map()
  let buffered = Buffer.alloc(0)
  socket.on('data', chunk => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    while (buffered.length >= frame) {
      const id = buffered.readUInt32BE(0)
      buffered = buffered.subarray(frame)
      waiting.get(id)?.()
      waiting.delete(id)
    }
  })
  let next = 0
  const result = await runOps({ total: streams, concurrency, timeoutMs }, async () => {
    const id = next++
    const request = Buffer.alloc(frame, 7)
    request.writeUInt32BE(id, 0)
    const answered = new Promise(resolve => waiting.set(id, resolve))
    socket.write(request)
    await answered
  })
  socket.destroy()
  server.close()
  return summarise(result)
}

export async function handshakes ({ connections, concurrency, timeoutMs }) {
  const { server, dial } = await setup(socket => { socket.on('error', () => {}); socket.end() })
  const result = await runOps({ total: connections, concurrency, timeoutMs }, async () => {
    const socket = await dial()
    socket.destroy()
  })
  server.close()
  return { connectionsPerSecond: result.completed / result.seconds, completed: result.completed, errors: result.errors }
}

export async function idle ({ connections }) {
  const sockets = []
  const { server, dial } = await setup(socket => { socket.on('error', () => {}); sockets.push(socket) })
  const { bytesPerConnection, opened } = await measureIdle(dial, connections)
  for (const socket of [...opened, ...sockets]) socket.destroy()
  server.close()
  return { bytesPerConnection, connected: opened.length - 1 }
}
