/**
 * `node src/cmd/lab-apiserver.ts [options]`: runs antrea-lab's embedded Kubernetes API server on its
 * own, for manual testing with kubectl. Writes a kubeconfig and serves until SIGINT/SIGTERM.
 *
 *   --data-dir DIR        keep objects, certificates and the admin token across restarts
 *   --host ADDR           listen address (default 127.0.0.1)
 *   --port N              listen port (default 6443; 0 = any)
 *   --kubeconfig FILE     where to write the admin kubeconfig (default ./antrea-lab.kubeconfig)
 *   --insecure-http       plain HTTP (loopback only)
 *   --service-cidr CIDR   ClusterIP range (default 10.96.0.0/12)
 *   --cluster-cidr CIDR   allocate Node podCIDRs from this range
 *   --log-level LEVEL     error|warn|info|debug|trace (default info)
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '../common/util/errors.ts';
import { createLogger, parseLogLevel } from '../common/util/log.ts';
import { ApiServerRunner, type ApiServerOptions } from '../lab/apiserver/index.ts';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '6443' },
    kubeconfig: { type: 'string', default: 'antrea-lab.kubeconfig' },
    'insecure-http': { type: 'boolean', default: false },
    'service-cidr': { type: 'string' },
    'cluster-cidr': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log('usage: lab-apiserver [--data-dir DIR] [--host ADDR] [--port N] [--kubeconfig FILE] [--insecure-http]');
  console.log('                     [--service-cidr CIDR] [--cluster-cidr CIDR] [--log-level LEVEL]');
  process.exit(0);
}

try {
  const logger = createLogger({ level: parseLogLevel(values['log-level']), format: 'text' });
  const port = Number(values.port);
  const opts: ApiServerOptions = {
    host: values.host,
    port,
    insecureHttp: values['insecure-http'],
    logger,
    ...(values['data-dir'] === undefined ? {} : { dataDir: resolve(values['data-dir']) }),
    ...(values['service-cidr'] === undefined ? {} : { serviceCIDR: values['service-cidr'] }),
    ...(values['cluster-cidr'] === undefined ? {} : { clusterCIDR: values['cluster-cidr'] }),
  };
  const kubeconfig = resolve(values.kubeconfig);
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
  await new ApiServerRunner(opts, (s) => {
    s.writeKubeconfig(kubeconfig);
    console.log(`API server at ${s.url}; kubeconfig written to ${kubeconfig}`);
    console.log(`try: KUBECONFIG=${kubeconfig} kubectl get namespaces`);
  }).run(ac.signal);
} catch (err) {
  console.error(`lab-apiserver: ${errorMessage(err)}`);
  process.exitCode = 1;
}
