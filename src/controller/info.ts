/**
 * The AntreaControllerInfo heartbeat (Antrea's pkg/monitor/controller.go): the cluster-scoped
 * custom object `antreacontrollerinfos.crd.antrea.io/v1beta1` named `antrea-controller`, written at
 * start and every `intervalMs` (default 60 s) with the version, the controller's Pod and Node, the
 * store sizes, the number of connected agents (Nodes with an AppliedToGroup watch) and a
 * `ControllerHealthy` condition whose `lastHeartbeatTime` tells readers the controller is alive.
 * The same content (without the Kubernetes bookkeeping) is served by the controller's own API under
 * `system.antrea.io/v1beta1 controllerinfos/antrea-controller`.
 *
 * A heartbeat creates the object when absent and replaces it otherwise (re-reading it on a
 * conflict); failures are logged and retried at the next tick, never fatal.
 */
import { type Clock, systemClock } from '../common/util/clock.ts';
import { errorMessage } from '../common/util/errors.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import type { Runnable } from '../common/util/runnable.ts';
import type { WatchHub } from './apiserver/watch.ts';
import { type ControllerKubeClient, type CustomResource, isConflict, type KubeCustomObject } from './kube.ts';
import type { NetworkPolicyController } from './networkpolicy/controller.ts';

export const CONTROLLER_INFO_NAME = 'antrea-controller';
export const CONTROLLER_INFO_RESOURCE: CustomResource = {
  group: 'crd.antrea.io',
  version: 'v1beta1',
  plural: 'antreacontrollerinfos',
};

export interface ControllerMonitorOptions {
  readonly controller: NetworkPolicyController;
  readonly hub: WatchHub;
  /** Where to write the heartbeat; without one, only the API serves the information. */
  readonly kube?: ControllerKubeClient;
  readonly version: string;
  readonly apiPort: number;
  /** The controller's Pod (POD_NAMESPACE / POD_NAME) and Node (NODE_NAME), when known. */
  readonly podNamespace?: string;
  readonly podName?: string;
  readonly nodeName?: string;
  readonly serviceName?: string;
  /** Heartbeat period (default 60 s). */
  readonly intervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export class ControllerMonitor implements Runnable {
  private readonly o: ControllerMonitorOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  /** Heartbeats written. */
  heartbeats = 0;
  lastError: string | undefined;

  constructor(opts: ControllerMonitorOptions) {
    this.o = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? nullLogger).child({ component: 'controller-monitor' });
  }

  /** The AntreaControllerInfo fields as of now (name included, no resourceVersion). */
  info(): Record<string, unknown> {
    const o = this.o;
    const c = o.controller;
    return {
      metadata: { name: CONTROLLER_INFO_NAME },
      version: o.version,
      ...(o.podName === undefined
        ? {}
        : { podRef: { kind: 'Pod', namespace: o.podNamespace ?? 'kube-system', name: o.podName } }),
      ...(o.nodeName === undefined ? {} : { nodeRef: { kind: 'Node', name: o.nodeName } }),
      serviceRef: { kind: 'Service', name: o.serviceName ?? 'antrea' },
      networkPolicyControllerInfo: {
        networkPolicyNum: c.networkPolicies.size,
        addressGroupNum: c.addressGroups.size,
        appliedToGroupNum: c.appliedToGroups.size,
      },
      connectedAgentNum: o.hub.stats().connectedAgents,
      controllerConditions: [
        {
          type: 'ControllerHealthy',
          status: 'True',
          lastHeartbeatTime: new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        },
      ],
      apiPort: o.apiPort,
    };
  }

  /** Writes one heartbeat (create when absent, else replace). Throws on failure. */
  async heartbeat(): Promise<void> {
    const kube = this.o.kube;
    if (kube === undefined) return;
    const client = kube.customObjects(CONTROLLER_INFO_RESOURCE);
    for (let attempt = 0; ; attempt++) {
      const body: KubeCustomObject = {
        apiVersion: `${CONTROLLER_INFO_RESOURCE.group}/${CONTROLLER_INFO_RESOURCE.version}`,
        kind: 'AntreaControllerInfo',
        ...(this.info() as { metadata: { name: string } }),
      };
      try {
        const cur = await client.get(CONTROLLER_INFO_NAME);
        if (cur === undefined) await client.create(body);
        else {
          const rv = cur.metadata.resourceVersion;
          await client.update({
            ...body,
            metadata: {
              ...cur.metadata,
              name: CONTROLLER_INFO_NAME,
              ...(rv === undefined ? {} : { resourceVersion: rv }),
            },
          });
        }
        this.heartbeats++;
        this.lastError = undefined;
        return;
      } catch (err) {
        if (isConflict(err) && attempt < 2) continue;
        throw err;
      }
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    if (this.o.kube === undefined) return;
    while (!signal.aborted) {
      try {
        await this.heartbeat();
      } catch (err) {
        this.lastError = errorMessage(err);
        this.log.warn('AntreaControllerInfo heartbeat failed', { err: this.lastError });
      }
      try {
        await this.clock.sleep(this.o.intervalMs ?? 60_000, signal);
      } catch {
        return;
      }
    }
  }
}
