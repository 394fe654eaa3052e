// A worker of bench/multicore.mjs: serves echo on the connections it is given.
import { receiveConnections } from '../dist/index.js'

receiveConnections(async (connection) => {
  for await (const stream of connection) {
    stream.on('error', () => {})
    void (async () => {
      const chunks = []
      for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk)
      stream.end(Buffer.concat(chunks))
    })()
  }
})
