/**
 * lab-pod: the program the antrea-lab kubelet stand-in runs inside each Pod's network namespace.
 * It serves TCP and UDP on the given ports (answering with the hostname) and runs probes asked for
 * on its control socket, until SIGTERM, or until the process that started it is gone.
 *
 *   lab-pod --hostname NAME --socket PATH [--tcp 80,81] [--udp 80,81] [--unsupported 80/SCTP,...]
 */
import { parseArgs } from 'node:util';
import { errorMessage } from '../common/util/errors.ts';
import { createLogger } from '../common/util/log.ts';
import { PodServer } from '../lab/pod-server.ts';

function ports(v: string | undefined, flag: string): number[] {
  if (v === undefined || v === '') return [];
  return v.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${flag}: not a port: "${s}"`);
    return n;
  });
}

try {
  const { values } = parseArgs({
    options: {
      hostname: { type: 'string' },
      socket: { type: 'string' },
      tcp: { type: 'string' },
      udp: { type: 'string' },
      unsupported: { type: 'string' },
    },
    strict: true,
  });
  if (values.hostname === undefined || values.socket === undefined) {
    throw new Error('usage: lab-pod --hostname NAME --socket PATH [--tcp PORTS] [--udp PORTS] [--unsupported LIST]');
  }
  const server = new PodServer({
    hostname: values.hostname,
    socketPath: values.socket,
    tcpPorts: ports(values.tcp, '--tcp'),
    udpPorts: ports(values.udp, '--udp'),
    unsupported: (values.unsupported ?? '').split(',').filter((s) => s !== ''),
    logger: createLogger({ level: 'warn', format: 'text' }),
  });
  await server.start();
  const parent = process.ppid;
  const stop = (): void => {
    clearInterval(watch);
    void server.stop().then(() => process.exit(0));
  };
  // Orphaned (the supervisor was killed): nothing will ever ask again, so go.
  const watch = setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 1000);
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (err) {
  console.error(`lab-pod: ${errorMessage(err)}`);
  process.exitCode = 1;
}
