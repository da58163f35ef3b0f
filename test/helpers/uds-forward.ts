/**
 * Forwards TCP connections accepted on 127.0.0.1:PORT to a Unix socket (run inside a network
 * namespace with `ip netns exec`): with a Unix-socket-to-TCP forwarder in the test process, a
 * process inside a Node namespace reaches a server on the root namespace's loopback without any
 * address or route in the root namespace.
 *
 *   uds-forward.ts PORT SOCKET_PATH
 */
import { connect, createServer } from 'node:net';

const [port = '', path = ''] = process.argv.slice(2);
createServer((c) => {
  const u = connect(path);
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
}).listen(Number(port), '127.0.0.1', () => console.log('forwarding'));
