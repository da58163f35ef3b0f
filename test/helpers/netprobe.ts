/**
 * A tiny TCP/UDP probe run inside network namespaces by the multi-node tests (`ip netns exec NS node
 * test/helpers/netprobe.ts ...`):
 *
 *   serve tcp|udp PORT          TCP: per connection, counts the bytes received and answers
 *                               `peer=<source address> bytes=<n>` when the client ends its side.
 *                               UDP: answers each datagram with `peer=<source> bytes=<n>`.
 *   send tcp|udp HOST PORT N    sends N bytes (UDP: one datagram), prints the answer and exits 0;
 *                               exits 1 after a timeout (5 s for UDP, 10 s to connect and 60 s in all for TCP) or an error.
 */
import { createSocket } from 'node:dgram';
import { createConnection, createServer } from 'node:net';

const [mode, proto, a, b, c] = process.argv.slice(2);

function fail(msg: string): never {
  process.stderr.write(`netprobe: ${msg}\n`);
  process.exit(1);
}

if (mode === 'serve' && proto === 'tcp') {
  createServer((sock) => {
    let n = 0;
    sock.on('data', (d: Buffer) => (n += d.length));
    sock.on('end', () => sock.end(`peer=${(sock.remoteAddress ?? '').replace(/^::ffff:/, '')} bytes=${n}\n`));
    sock.on('error', () => sock.destroy());
  }).listen(Number(a));
} else if (mode === 'serve' && proto === 'udp') {
  const s = createSocket('udp4');
  s.on('message', (msg, rinfo) => s.send(`peer=${rinfo.address} bytes=${msg.length}\n`, rinfo.port, rinfo.address));
  s.bind(Number(a));
} else if (mode === 'send' && proto === 'tcp') {
  const timer = setTimeout(() => fail('timeout'), 60_000);
  const sock = createConnection({ host: a ?? '', port: Number(b) });
  const chunks: Buffer[] = [];
  const connectTimer = setTimeout(() => fail('connect timeout'), 10_000);
  sock.on('connect', () => {
    clearTimeout(connectTimer);
    const total = Number(c ?? 0);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let left = total;
    const pump = (): void => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!sock.write(piece)) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end();
    };
    pump();
  });
  sock.on('data', (d: Buffer) => chunks.push(d));
  sock.on('end', () => {
    clearTimeout(timer);
    process.stdout.write(Buffer.concat(chunks).toString());
    process.exit(0);
  });
  sock.on('error', (err) => fail(err.message));
} else if (mode === 'send' && proto === 'udp') {
  const s = createSocket('udp4');
  const timer = setTimeout(() => fail('timeout'), 5_000);
  s.on('message', (msg) => {
    clearTimeout(timer);
    process.stdout.write(msg.toString());
    process.exit(0);
  });
  s.send(Buffer.alloc(Number(c ?? 4), 0x61), Number(b), a ?? '');
} else {
  fail('usage: serve tcp|udp PORT | send tcp|udp HOST PORT BYTES');
}
