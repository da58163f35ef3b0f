/**
 * `npm run bench -- datapath [--seconds N] [--tunnels geneve,vxlan,gre]`
 *
 * TCP throughput (iperf3, one stream, N seconds, default 5) between Pods of a real cluster built by
 * the multi-node harness (antrea-agent per Node, userspace OVS, the full pipeline): Pod to Pod on one
 * Node, and across Nodes through each tunnel type. The baseline, measured in the same run, is a
 * bare OVS netdev bridge with one NORMAL flow between two namespaces joined by veths (TX checksum
 * offload off, as for Pods). ratio = ours / baseline (> 1 would be faster than the bare bridge).
 *
 * Needs root (network namespaces and OVS daemons).
 */
import type { Test } from 'tap';
import { inNetns, disableTxChecksum } from '../../src/platform/linux/libc.ts';
import { Cleanup } from '../helpers/agent-node.ts';
import { launcher, runner, tempNetns, tempOvs } from '../helpers/env.ts';
import { Cluster } from '../helpers/multinode.ts';
import { emit, round } from './lib.ts';

interface Options {
  seconds: number;
  tunnels: ('geneve' | 'vxlan' | 'gre')[];
}

function parseArgs(args: string[]): Options {
  const o: Options = { seconds: 5, tunnels: ['geneve', 'vxlan', 'gre'] };
  for (let i = 0; i < args.length; i += 2) {
    const v = args[i + 1] ?? '';
    if (args[i] === '--seconds' && Number(v) > 0) o.seconds = Number(v);
    else if (args[i] === '--tunnels' && /^(geneve|vxlan|gre)(,(geneve|vxlan|gre))*$/.test(v))
      o.tunnels = v.split(',') as Options['tunnels'];
    else
      throw new Error(`usage: npm run bench -- datapath [--seconds N] [--tunnels geneve,vxlan,gre] (bad: ${args[i]})`);
  }
  return o;
}

/** iperf3 from client namespace to server address; bits per second received. */
async function iperf(
  c: Cleanup,
  serverNs: string,
  clientNs: string,
  serverIp: string,
  seconds: number,
): Promise<number> {
  const srv = await launcher.launch('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '-p', '5201']);
  c.teardown(() => srv.stop(2_000));
  let last: unknown;
  for (let i = 0; i < 20; i++) {
    const r = await runner.run(
      'ip',
      ['netns', 'exec', clientNs, 'iperf3', '-c', serverIp, '-p', '5201', '-t', String(seconds), '-J'],
      { okExitCodes: [1], timeoutMs: (seconds + 30) * 1000 },
    );
    if (r.exitCode === 0) {
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
      await srv.exited;
      return j.end.sum_received.bits_per_second;
    }
    last = r.stdout + r.stderr;
    await new Promise((res) => setTimeout(res, 300));
  }
  throw new Error(`iperf3 failed: ${String(last)}`);
}

/** The baseline: two namespaces on a bare netdev bridge with one NORMAL flow. */
async function bareBridge(c: Cleanup, seconds: number): Promise<number> {
  const t = c as unknown as Test;
  const ovs = await tempOvs(t);
  const ns = ovs.netns ?? '';
  const a = await tempNetns(t, 'bba-');
  const b = await tempNetns(t, 'bbb-');
  const vsctl = (...args: string[]): Promise<unknown> => runner.run('ovs-vsctl', [`--db=${ovs.dbEndpoint}`, ...args]);
  await vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev');
  for (const [pod, ip, i] of [
    [a, '10.99.0.1', 1],
    [b, '10.99.0.2', 2],
  ] as const) {
    await runner.run('ip', ['-n', ns, 'link', 'add', `h${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod]);
    await runner.run('ip', ['-n', ns, 'link', 'set', `h${i}`, 'up']);
    await runner.run('ip', ['-n', pod, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await runner.run('ip', ['-n', pod, 'link', 'set', 'eth0', 'up']);
    inNetns(`/run/netns/${pod}`, () => disableTxChecksum('eth0'));
    await vsctl('add-port', 'br0', `h${i}`);
  }
  await runner.run('ovs-ofctl', ['del-flows', `unix:${ovs.bridgeMgmtSocketPath('br0')}`]);
  await runner.run('ovs-ofctl', ['add-flow', `unix:${ovs.bridgeMgmtSocketPath('br0')}`, 'actions=NORMAL']);
  return iperf(c, b, a, '10.99.0.2', seconds);
}

const gbps = (bps: number): number => round(bps / 1e9, 3);

export async function run(args: string[]): Promise<void> {
  const o = parseArgs(args);
  const c = new Cleanup();
  try {
    const baseline = await bareBridge(c, o.seconds);
    const baselineFig = { throughput_gbps: gbps(baseline) };
    let sameNodeDone = false;
    for (const tunnel of o.tunnels) {
      const cluster = await Cluster.create(c, {
        trafficEncapMode: 'encap',
        tunnelType: tunnel,
        nodes: [{ subnet: 'a' }, { subnet: 'a' }],
      });
      await cluster.startAgents();
      const [n1, n2] = cluster.nodes;
      if (n1 === undefined || n2 === undefined) throw new Error('two Nodes');
      const p1 = await cluster.addPod(n1, 'client');
      const ns = (p: { netns: string }): string => p.netns.replace('/run/netns/', '');
      if (!sameNodeDone) {
        const local = await cluster.addPod(n1, 'local');
        const bps = await iperf(c, ns(local), ns(p1), local.ip, o.seconds);
        emit({
          bench: 'datapath',
          case: 'pod-to-pod same Node (iperf3 TCP)',
          throughput_gbps: gbps(bps),
          baseline: baselineFig,
          ratio: round(bps / baseline, 3),
        });
        sameNodeDone = true;
      }
      const p2 = await cluster.addPod(n2, 'server');
      const bps = await iperf(c, ns(p2), ns(p1), p2.ip, o.seconds);
      emit({
        bench: 'datapath',
        case: `pod-to-pod across Nodes, ${tunnel} (iperf3 TCP)`,
        throughput_gbps: gbps(bps),
        baseline: baselineFig,
        ratio: round(bps / baseline, 3),
      });
    }
  } finally {
    await c.run();
  }
}
