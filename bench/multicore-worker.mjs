// A worker of bench/multicore.mjs: serves echo on the connections it is given.
import { receiveConnections } from '../dist/index.js'
import { serveEcho } from './lib.mjs'

receiveConnections(connection => { void serveEcho(connection) })
