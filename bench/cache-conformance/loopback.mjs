// Preloaded into the suite's test server (node --import) by ./run: a server told to listen on
// a port alone listens on 127.0.0.1 only, not on every interface.
import http from 'node:http'
import net from 'node:net'

const listen = net.Server.prototype.listen
http.Server.prototype.listen = function (...args) {
  if (args.length >= 1 && (typeof args[0] === 'number' || /^[0-9]+$/.test(String(args[0]))) &&
      (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, args)
}
