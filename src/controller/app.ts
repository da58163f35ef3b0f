/**
 * antrea-controller assembled (Antrea's cmd/antrea-controller/controller.go `run`): the informers
 * and the NetworkPolicy computation, the serving certificate (self-signed and kept in a Secret, or
 * provided files) with its CA published in ConfigMap `antrea-ca`, the controlplane API server with
 * delegated authentication and authorization, the status aggregator, the metrics and the
 * AntreaControllerInfo heartbeat. `run(signal)` runs everything until `signal` aborts, then stops
 * serving and returns; a component that fails makes `run` reject (after stopping the others).
 *
 * Every Kubernetes call goes through the given KubeConfig, so the same code runs against a real
 * cluster and against antrea-lab's embedded API server.
 */
import { ANTREA_TS_VERSION } from '../common/version.ts';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { ControlplaneEncoder } from '../common/apis/controlplane/codec.ts';
import { type Clock, systemClock } from '../common/util/clock.ts';
import { errorMessage } from '../common/util/errors.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import { MetricsRegistry } from '../common/util/metrics.ts';
import type { Runnable } from '../common/util/runnable.ts';
import { DelegatingAuthorizer, NodeAccessPolicy, TokenAuthenticator } from './apiserver/auth.ts';
import { ControlplaneServer, type ControlplaneServerOptions } from './apiserver/server.ts';
import { WatchHub } from './apiserver/watch.ts';
import {
  CABundlePublisher,
  type CertificateProvider,
  FileCertificateProvider,
  SelfSignedCertificateProvider,
} from './certificate.ts';
import type { ControllerConfig } from './config.ts';
import { ControllerMonitor } from './info.ts';
import { type ControllerKubeClient, createControllerKubeClient } from './kube.ts';
import { ControllerMetrics } from './metrics.ts';
import { NetworkPolicyController } from './networkpolicy/controller.ts';
import { type ControllerInformerOptions, createControllerInformers } from './networkpolicy/informers.ts';
import { StatusAggregator } from './status/aggregator.ts';

export const CONTROLLER_VERSION = ANTREA_TS_VERSION;

export interface ControllerAppOptions {
  readonly config: ControllerConfig;
  readonly kubeConfig: KubeConfig;
  /** The Antrea namespace (POD_NAMESPACE; default kube-system). */
  readonly namespace?: string;
  readonly podName?: string;
  readonly nodeName?: string;
  /** Replaces the client built from `kubeConfig` (tests). */
  readonly kube?: ControllerKubeClient;
  /** Replaces the certificate provider chosen by the config (tests, benchmarks). */
  readonly certificate?: CertificateProvider;
  /** Extra server options (buffer bounds, watch timeouts...). */
  readonly server?: Partial<Omit<ControlplaneServerOptions, 'controller' | 'hub' | 'encoder' | 'certificate'>>;
  readonly informerOptions?: ControllerInformerOptions['informerOptions'];
  /** Called once the API server listens. */
  readonly onListening?: (addr: AddressInfo) => void;
  readonly heartbeatIntervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export class ControllerApp implements Runnable {
  readonly controller: NetworkPolicyController;
  readonly hub: WatchHub;
  readonly status: StatusAggregator;
  readonly metrics: MetricsRegistry;
  readonly server: ControlplaneServer;
  readonly certificate: CertificateProvider;
  readonly caPublisher: CABundlePublisher | undefined;
  readonly monitor: ControllerMonitor;
  readonly kube: ControllerKubeClient;
  readonly authenticator: TokenAuthenticator;
  readonly authorizer: DelegatingAuthorizer;
  private readonly o: ControllerAppOptions;
  private readonly log: Logger;

  constructor(opts: ControllerAppOptions) {
    this.o = opts;
    const logger = opts.logger ?? nullLogger;
    const clock = opts.clock ?? systemClock;
    this.log = logger.child({ component: 'antrea-controller' });
    const namespace = opts.namespace ?? 'kube-system';
    this.kube = opts.kube ?? createControllerKubeClient(opts.kubeConfig);
    this.metrics = new MetricsRegistry();
    const cm = new ControllerMetrics(this.metrics);
    this.controller = new NetworkPolicyController({ logger, metrics: cm });
    const encoder = new ControlplaneEncoder();
    this.hub = new WatchHub(this.controller, encoder, { logger });
    this.status = new StatusAggregator(this.controller);
    cm.attach(this.controller, this.hub, this.status);
    const cfg = opts.config;
    this.certificate =
      opts.certificate ??
      (cfg.selfSignedCert
        ? new SelfSignedCertificateProvider({ kube: this.kube, namespace, clock, logger })
        : new FileCertificateProvider({ dir: cfg.tlsCertDir, clock, logger }));
    this.caPublisher = new CABundlePublisher({ kube: this.kube, namespace, clock, logger });
    this.monitor = new ControllerMonitor({
      controller: this.controller,
      hub: this.hub,
      kube: this.kube,
      version: CONTROLLER_VERSION,
      apiPort: cfg.apiPort,
      podNamespace: namespace,
      ...(opts.podName === undefined ? {} : { podName: opts.podName }),
      ...(opts.nodeName === undefined ? {} : { nodeName: opts.nodeName }),
      ...(opts.heartbeatIntervalMs === undefined ? {} : { intervalMs: opts.heartbeatIntervalMs }),
      clock,
      logger,
    });
    this.authenticator = new TokenAuthenticator(this.kube, { clock });
    this.authorizer = new DelegatingAuthorizer(this.kube, { clock });
    this.server = new ControlplaneServer({
      controller: this.controller,
      hub: this.hub,
      encoder,
      authenticator: this.authenticator,
      authorizer: this.authorizer,
      nodePolicy: new NodeAccessPolicy({
        agentUsers: [`system:serviceaccount:${namespace}:antrea-agent`],
        allowUnboundAgents: cfg.allowUnboundAgentTokens,
      }),
      status: this.status,
      metrics: this.metrics,
      certificate: this.certificate,
      controllerInfo: () => this.monitor.info(),
      readinessChecks: () => ({ 'ca-bundle-published': this.caPublished }),
      host: cfg.apiBindAddress,
      port: cfg.apiPort,
      ...(cfg.tlsMinVersion === undefined ? {} : { tlsMinVersion: cfg.tlsMinVersion }),
      ...(cfg.tlsCipherSuites === '' ? {} : { tlsCipherSuites: cfg.tlsCipherSuites }),
      logger,
      clock,
      ...opts.server,
    });
  }

  private caPublished = false;

  async run(signal: AbortSignal): Promise<void> {
    const inner = new AbortController();
    const stop = (): void => inner.abort();
    signal.addEventListener('abort', stop, { once: true });
    const publisher = this.caPublisher;
    // The CA is published before a certificate it signed is served (listeners run in order).
    const unsubscribe = this.certificate.onChange(async (c) => {
      if (publisher === undefined) return;
      await publisher.publish(c.caBundlePem, inner.signal);
      this.caPublished = true;
    });
    const informers = createControllerInformers(this.controller, {
      kubeConfig: this.o.kubeConfig,
      logger: this.o.logger ?? nullLogger,
      ...(this.o.informerOptions === undefined ? {} : { informerOptions: this.o.informerOptions }),
    });
    const guard = (name: string, p: Promise<void>): Promise<void> =>
      p.catch((err: unknown) => {
        if (inner.signal.aborted) return;
        this.log.error(`${name} failed; stopping`, { err: errorMessage(err) });
        inner.abort();
        throw err;
      });
    const tasks: Promise<void>[] = [
      guard('certificate', this.certificate.run(inner.signal)),
      guard('networkpolicy controller', this.controller.run(inner.signal, informers.all)),
      guard('heartbeat', this.monitor.run(inner.signal)),
      ...(publisher === undefined ? [] : [guard('CA publisher', publisher.run(inner.signal))]),
      guard(
        'API server',
        (async () => {
          try {
            const addr = await this.server.start(inner.signal);
            this.o.onListening?.(addr);
          } catch (err) {
            if (inner.signal.aborted) return;
            throw err;
          }
          await new Promise<void>((resolve) => {
            if (inner.signal.aborted) resolve();
            else inner.signal.addEventListener('abort', () => resolve(), { once: true });
          });
        })(),
      ),
    ];
    try {
      const results = await Promise.allSettled(tasks);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    } finally {
      signal.removeEventListener('abort', stop);
      unsubscribe();
      this.hub.stop();
      this.status.stop();
      await this.server.stop();
    }
  }
}
