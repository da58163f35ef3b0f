/**
 * An in-process Node datapath for NetworkPolicy tests and benchmarks: a private OVS with br-int
 * (userspace datapath), the agent's pipeline (PodConnectivity + NetworkPolicy) programmed by a
 * BridgeClient in this process, the agent's NetworkPolicy controller on top, and Pods as network
 * namespaces with a veth on br-int (addresses, routes and Pod flows as the CNI server sets them).
 * Everything is removed at teardown.
 */
import type { Test } from 'tap';
import { NetworkPolicyController } from '../../src/common/agent/networkpolicy/controller.ts';
import { BridgeClient } from '../../src/common/agent/openflow/bridge.ts';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import { NetworkPolicyFeature } from '../../src/common/agent/openflow/network-policy.ts';
import { PodConnectivityFeature, podFlowKey } from '../../src/common/agent/openflow/pod-connectivity.ts';
import { OpenFlowClient } from '../../src/common/ovs/openflow/client.ts';
import type { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { runner, tempNetns, tempOvs, uniqueName } from './env.ts';
import { addBridge, ofport, vsctl } from './ovs-bridge.ts';

export const POD_CIDR = '10.10.1.0/24';
const GATEWAY = { ofport: 32769, mac: '0a:00:00:00:00:01', ips: ['10.10.1.1'] };

export interface LocalPod {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  readonly mac: string;
  readonly port: string;
  readonly ofport: number;
}

export class PolicyBridge {
  readonly ovs: OvsDaemons;
  readonly endpoint: string;
  readonly bridge: BridgeClient;
  readonly controller: NetworkPolicyController;
  readonly podFeature: PodConnectivityFeature;
  private nextIp = 5;
  private readonly t: Pick<Test, 'teardown'>;

  private constructor(
    t: Pick<Test, 'teardown'>,
    ovs: OvsDaemons,
    endpoint: string,
    bridge: BridgeClient,
    controller: NetworkPolicyController,
    podFeature: PodConnectivityFeature,
  ) {
    this.t = t;
    this.ovs = ovs;
    this.endpoint = endpoint;
    this.bridge = bridge;
    this.controller = controller;
    this.podFeature = podFeature;
  }

  static async create(t: Pick<Test, 'teardown'>, round = 1): Promise<PolicyBridge> {
    const tt = t as Test;
    const ovs = await tempOvs(tt);
    const endpoint = await addBridge(ovs, 'br-int');
    const cookies = new CookieAllocator(round);
    const podFeature = new PodConnectivityFeature({ cookies, gateway: GATEWAY, podCIDRs: [POD_CIDR] });
    const npFeature = new NetworkPolicyFeature({ cookies, gatewayIPs: GATEWAY.ips });
    const client = new OpenFlowClient({ endpoint, backoff: { initialMs: 50, maxMs: 500 }, echoIntervalMs: 1000 });
    const bridge = new BridgeClient({
      client,
      pipeline: new RealizedPipeline([podFeature, npFeature]),
      cookies,
      opTimeoutMs: 30_000,
    });
    const controller = new NetworkPolicyController({ sink: bridge, feature: npFeature });
    const ac = new AbortController();
    const running = client.run(ac.signal);
    t.teardown(async () => {
      controller.close();
      ac.abort();
      await running;
    });
    await bridge.ready(AbortSignal.timeout(30_000));
    return new PolicyBridge(t, ovs, endpoint, bridge, controller, podFeature);
  }

  /** A Pod namespace with a veth on br-int, its address, and its Pod flows; registered with the controller. */
  async addPod(name: string): Promise<LocalPod> {
    const ns = await tempNetns(this.t as Test, 'pp-');
    const port = uniqueName('vp');
    const ip = `10.10.1.${this.nextIp++}`;
    const nodeNs = this.ovs.netns ?? '';
    await runner.run('ip', ['-n', nodeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await runner.run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await runner.run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await runner.run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await runner.run('ip', ['-n', nodeNs, 'link', 'set', port, 'up']);
    const mac =
      /link\/ether ([0-9a-f:]+)/.exec((await runner.run('ip', ['-n', ns, 'link', 'show', 'eth0'])).stdout)?.[1] ?? '';
    await vsctl(this.ovs, 'add-port', 'br-int', port);
    const of = await ofport(this.ovs, port);
    const pod: LocalPod = { name, ns, ip, mac, port, ofport: of };
    await this.controller.podAdded('x', name, port, { ofport: of, ips: [ip] });
    await this.bridge.replaceFlows(
      podFlowKey(port),
      this.podFeature.podFlows(this.bridge.pipeline, {
        type: 'container',
        name: port,
        ofport: of,
        mac,
        ips: [ip],
        container: { containerId: name, podName: name, podNamespace: 'x', ifDev: 'eth0', netns: `/run/netns/${ns}` },
      }),
    );
    return pod;
  }

  /** One ping from `from` to `to` (200 ms wait); true if answered. */
  async ping(from: LocalPod, to: LocalPod, waitS = '0.5'): Promise<boolean> {
    const r = await runner.run('ip', ['netns', 'exec', from.ns, 'ping', '-c1', '-W', waitS, '-q', to.ip], {
      okExitCodes: [1],
      timeoutMs: 10_000,
    });
    return r.exitCode === 0;
  }
}
