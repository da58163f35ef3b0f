/**
 * `node src/cmd/antrea-controller.ts --config /etc/antrea/antrea-controller.conf`: antrea-controller.
 *
 *   --config FILE       antrea-controller.conf (YAML; Antrea's keys, see src/controller/config.ts)
 *   --kubeconfig FILE   overrides clientConnection.kubeconfig (default: in-cluster / KUBECONFIG)
 *   --log-level LEVEL   error|warn|info|debug|trace or a klog verbosity (default info)
 *
 * Environment (as Antrea's Deployment sets it): POD_NAMESPACE (default kube-system), POD_NAME,
 * NODE_NAME. Serves until SIGINT/SIGTERM, then stops cleanly; exits 1 on a configuration error or
 * when a component fails.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadKubeConfig } from '../common/k8s/client.ts';
import { errorMessage } from '../common/util/errors.ts';
import { createLogger, parseLogLevel } from '../common/util/log.ts';
import { ControllerApp } from '../controller/app.ts';
import { parseControllerConfig } from '../controller/config.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    kubeconfig: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log('usage: antrea-controller [--config FILE] [--kubeconfig FILE] [--log-level LEVEL]');
  process.exit(0);
}

try {
  const logger = createLogger({ level: parseLogLevel(values['log-level']) });
  const config = parseControllerConfig(values.config === undefined ? '' : readFileSync(values.config, 'utf8'));
  const kc = loadKubeConfig(values.kubeconfig ?? config.kubeconfig);
  if (config.kubeAPIServerOverride !== '') {
    const cluster = kc.getCurrentCluster();
    const server = /^https?:\/\//.test(config.kubeAPIServerOverride)
      ? config.kubeAPIServerOverride
      : `https://${config.kubeAPIServerOverride}`;
    if (cluster !== null) {
      kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server } : c));
    }
  }
  const env = process.env;
  const app = new ControllerApp({
    config,
    kubeConfig: kc,
    namespace: env['POD_NAMESPACE'] ?? 'kube-system',
    ...(env['POD_NAME'] === undefined ? {} : { podName: env['POD_NAME'] }),
    ...(env['NODE_NAME'] === undefined ? {} : { nodeName: env['NODE_NAME'] }),
    logger,
    onListening: (a) => logger.info('antrea-controller API listening', { address: a.address, port: a.port }),
  });
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
  await app.run(ac.signal);
} catch (err) {
  console.error(`antrea-controller: ${errorMessage(err)}`);
  process.exit(1);
}
