/**
 * A tiny traffic program for NetworkPolicy tests, run inside Pod namespaces (`ip netns exec`):
 *
 *   netpol-probe.ts serve TCP_PORTS UDP_PORTS       listen (comma-separated ports; "-" for none):
 *                                                  TCP answers "ok" and closes, UDP echoes
 *   netpol-probe.ts tcp|udp IP PORT [TIMEOUT_MS] [SRC_PORT]
 *                                                  one connection / datagram (from SRC_PORT if given);
 *                                                  prints "ok" (exit 0) or "fail: <why>" (exit 1)
 *   netpol-probe.ts multi tcp|udp PORT MS IP...     probes every IP at once; one "IP ok|fail" line each
 *   netpol-probe.ts loop tcp|udp IP PORT MS        a probe every MS until killed; one line each:
 *                                                  "<epoch ms> ok" or "<epoch ms> fail: <why>"
 */
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

const [mode = '', a = '', b = '', c = '', d = ''] = process.argv.slice(2);

function ports(list: string): number[] {
  return list === '-' || list === '' ? [] : list.split(',').map(Number);
}

function probe(proto: string, ip: string, port: number, timeoutMs: number, srcPort?: number): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      done('fail: timeout');
    }, timeoutMs);
    let finished = false;
    const cleanups: (() => void)[] = [];
    const done = (r: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      for (const f of cleanups) f();
      resolve(r);
    };
    if (proto === 'tcp') {
      const s = connect({ host: ip, port, ...(srcPort === undefined ? {} : { localPort: srcPort }) });
      cleanups.push(() => s.destroy());
      let data = '';
      s.on('data', (x) => (data += x.toString()));
      s.on('end', () => done(data === 'ok' ? 'ok' : `fail: got ${JSON.stringify(data)}`));
      s.on('error', (e) => done(`fail: ${e.message}`));
    } else {
      const s = createSocket('udp4');
      cleanups.push(() => s.close());
      s.on('message', (m) => done(m.toString() === 'ping' ? 'ok' : 'fail: bad echo'));
      s.on('error', (e) => done(`fail: ${e.message}`));
      if (srcPort === undefined) s.send('ping', port, ip);
      else s.bind(srcPort, () => s.send('ping', port, ip));
    }
  });
}

if (mode === 'serve') {
  for (const p of ports(a)) createServer((s) => s.end('ok')).listen(p, '0.0.0.0');
  for (const p of ports(b)) {
    const u = createSocket('udp4');
    u.on('message', (m, r) => u.send(m, r.port, r.address));
    u.bind(p, '0.0.0.0');
  }
  console.log('serving');
} else if (mode === 'tcp' || mode === 'udp') {
  const r = await probe(mode, a, Number(b), c === '' ? 1000 : Number(c), d === '' ? undefined : Number(d));
  console.log(r);
  process.exitCode = r === 'ok' ? 0 : 1;
} else if (mode === 'multi') {
  const ips = process.argv.slice(6);
  const results = await Promise.all(ips.map((ip) => probe(a, ip, Number(b), Number(c))));
  ips.forEach((ip, i) => console.log(`${ip} ${results[i] === 'ok' ? 'ok' : 'fail'}`));
} else if (mode === 'loop') {
  const every = Number(d === '' ? '200' : d);
  for (;;) {
    const t0 = Date.now();
    console.log(`${t0} ${await probe(a, b, Number(c), Math.max(300, every))}`);
    const left = every - (Date.now() - t0);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
  }
} else {
  console.error('usage: netpol-probe.ts serve TCP UDP | tcp|udp IP PORT [MS [SRC_PORT]] | loop tcp|udp IP PORT MS');
  process.exitCode = 2;
}
