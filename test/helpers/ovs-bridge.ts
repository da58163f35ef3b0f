/**
 * Helpers for tests and benchmarks that program a real OVS bridge: create a userspace bridge that
 * accepts OpenFlow 1.5 on a private OVS instance, and read its state back with ovs-ofctl (the
 * oracle for our canonical text).
 */
import type { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { runner } from './env.ts';

/** Creates a netdev bridge allowing OpenFlow 1.0 and 1.5; returns its management endpoint. */
export async function addBridge(ovs: OvsDaemons, bridge: string, protocols = 'OpenFlow10,OpenFlow15'): Promise<string> {
  await vsctl(ovs, 'add-br', bridge, '--', 'set', 'bridge', bridge, 'datapath_type=netdev', `protocols=${protocols}`);
  return `unix:${ovs.bridgeMgmtSocketPath(bridge)}`;
}

export async function vsctl(ovs: OvsDaemons, ...args: string[]): Promise<string> {
  return (await runner.run('ovs-vsctl', [`--db=${ovs.dbEndpoint}`, '--timeout=20', ...args], { timeoutMs: 30_000 }))
    .stdout;
}

export async function ofctl(...args: string[]): Promise<string> {
  return (await runner.run('ovs-ofctl', ['-O', 'OpenFlow15', ...args], { timeoutMs: 60_000 })).stdout;
}

/** `ovs-ofctl --no-stats dump-flows`: one canonical line per flow, sorted. */
export async function dumpFlowLines(endpoint: string, ...extra: string[]): Promise<string[]> {
  return lines(await ofctl('--no-stats', 'dump-flows', endpoint, ...extra)).sort();
}

/** `ovs-ofctl dump-groups`: one line per group, sorted. */
export async function dumpGroupLines(endpoint: string): Promise<string[]> {
  return lines(await ofctl('dump-groups', endpoint))
    .filter((l) => !l.startsWith('OFPST_GROUP_DESC'))
    .sort();
}

/** `ovs-ofctl dump-meters`: one (multi-line) text per meter, sorted. */
export async function dumpMeterTexts(endpoint: string): Promise<string[]> {
  const out = await ofctl('dump-meters', endpoint);
  return out
    .split('\n')
    .slice(1)
    .join('\n')
    .split(/\n\s*\n/)
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .sort();
}

function lines(s: string): string[] {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** The OpenFlow port number OVS assigned to an interface. */
export async function ofport(ovs: OvsDaemons, iface: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const v = (await vsctl(ovs, 'get', 'Interface', iface, 'ofport')).trim();
    if (/^\d+$/.test(v) && Number(v) > 0) return Number(v);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`interface ${iface} got no ofport`);
}
