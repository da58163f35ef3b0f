/**
 * The single-Node demo (`antrea-lab demo`), until the lab exists: one real Node made of a network
 * namespace with a private Open vSwitch (userspace datapath), the bridge br-int built through the
 * OVSDB bridge client with Antrea's gateway and tunnel ports, and one Pod namespace joined by a
 * veth. It lists the ports with their ofports and external_ids, proves the datapath forwards with a
 * ping from the Pod to the gateway, and removes everything again, also when interrupted or failing.
 *
 * Names carry the process id, so a demo killed with SIGKILL is cleaned up by the next one.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OFPORT_LOCAL, OvsdbBridge, type PortInfo } from '../common/ovs/ovsdb/bridge.ts';
import { OvsdbClient } from '../common/ovs/ovsdb/client.ts';
import { abortReason } from '../common/util/clock.ts';
import { errorMessage } from '../common/util/errors.ts';
import type { CommandRunner, ProcessLauncher } from '../common/util/exec.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import { aborted } from '../common/util/runnable.ts';
import { NETNS_DIR, NetnsManager } from '../platform/linux/netns.ts';
import { OvsDaemons } from '../platform/linux/ovs-daemons.ts';

export const DEMO_PREFIX = 'antrea-demo-';
const BRIDGE = 'br-int';
const GATEWAY = 'antrea-gw0';
const TUNNEL = 'antrea-tun0';
const GATEWAY_IP = '10.10.0.1/24';
const POD_IP = '10.10.0.2/24';

export interface DemoOptions {
  readonly runner: CommandRunner;
  readonly launcher: ProcessLauncher;
  /** One progress line for the user. */
  readonly say: (line: string) => void;
  /** Aborting stops the demo and cleans up. */
  readonly signal: AbortSignal;
  /** After listing the ports, keep the Node up until `signal` aborts. */
  readonly hold?: boolean;
  readonly logger?: Logger;
  /** Process id used in names (default: this process). */
  readonly pid?: number;
  /** Where the OVS run directory goes (default: the system temp dir). */
  readonly tmpDir?: string;
}

/** The names one demo run uses (derived from a process id). */
export function demoNames(pid: number, tmp = tmpdir()): { nodeNs: string; podNs: string; runDir: string } {
  return {
    nodeNs: `${DEMO_PREFIX}${pid}-node`,
    podNs: `${DEMO_PREFIX}${pid}-pod`,
    runDir: join(tmp, `${DEMO_PREFIX}${pid}`),
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes what demos whose process is gone left behind (namespaces, OVS daemons, run dirs).
 * Returns the pids cleaned up. Safe while other demos run: only dead owners are touched.
 */
export async function sweepStaleDemos(netns: NetnsManager, tmp = tmpdir()): Promise<number[]> {
  const owners = new Set<number>();
  const nsRe = new RegExp(`^${DEMO_PREFIX}(\\d+)-(node|pod)$`);
  const dirRe = new RegExp(`^${DEMO_PREFIX}(\\d+)$`);
  for (const name of existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR) : []) {
    const m = nsRe.exec(name);
    if (m !== null) owners.add(Number(m[1]));
  }
  for (const name of existsSync(tmp) ? readdirSync(tmp) : []) {
    const m = dirRe.exec(name);
    if (m !== null) owners.add(Number(m[1]));
  }
  const swept: number[] = [];
  for (const pid of owners) {
    if (pid === process.pid || pidAlive(pid)) continue;
    const n = demoNames(pid, tmp);
    await OvsDaemons.killStale(n.runDir);
    rmSync(n.runDir, { recursive: true, force: true });
    await netns.delete(n.podNs);
    await netns.delete(n.nodeNs);
    swept.push(pid);
  }
  return swept;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

function describePorts(ports: readonly PortInfo[]): string[] {
  const rows = ports.map((p) => [
    p.name,
    p.type,
    p.ofport === undefined ? '-' : String(p.ofport),
    Object.entries(p.externalIds)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  ]);
  return table([['NAME', 'TYPE', 'OFPORT', 'EXTERNAL_IDS'], ...rows]).map((l) => `  ${l}`);
}

/**
 * Runs the demo. Resolves when it finished and cleaned up; rejects with the first error after
 * cleaning up (an abort rejects with the signal's reason).
 */
export async function runDemo(opts: DemoOptions): Promise<void> {
  const { runner, say, signal } = opts;
  const logger = opts.logger ?? nullLogger;
  const netns = new NetnsManager(runner);
  const tmp = opts.tmpDir ?? tmpdir();
  const names = demoNames(opts.pid ?? process.pid, tmp);
  const check = (): void => {
    if (signal.aborted) throw abortReason(signal);
  };
  const swept = await sweepStaleDemos(netns, tmp);
  if (swept.length > 0) say(`removed leftovers of earlier demos (pids ${swept.join(', ')})`);

  const ovs = new OvsDaemons({ runDir: names.runDir, netns: names.nodeNs, runner, launcher: opts.launcher, logger });
  let client: OvsdbClient | undefined;
  const daemonPids: number[] = [];
  const ip = (ns: string, ...args: string[]): Promise<unknown> =>
    runner.run('ip', ['-n', ns, ...args], { signal, timeoutMs: 10_000 });
  try {
    say(`[1/7] Node namespace ${names.nodeNs}, Pod namespace ${names.podNs}`);
    await netns.ensure(names.nodeNs);
    await netns.ensure(names.podNs);
    check();

    say(`[2/7] ovsdb-server + ovs-vswitchd (userspace datapath) in ${names.nodeNs}, run dir ${names.runDir}`);
    await ovs.start();
    for (const d of ['ovsdb-server', 'ovs-vswitchd'] as const) {
      daemonPids.push(Number(readFileSync(ovs.pidPath(d), 'utf8').trim()));
    }
    check();

    client = await OvsdbClient.connect({ endpoint: ovs.dbEndpoint, logger, timeoutMs: 10_000 });
    say(`[3/7] connected to OVSDB at ${ovs.dbEndpoint} (schema ${client.schema?.version ?? '?'})`);
    check();

    const br = new OvsdbBridge(client, BRIDGE, { logger });
    const info = await br.create({ datapathType: 'netdev', protocols: ['OpenFlow10', 'OpenFlow15'] });
    const dpid = await br.waitForDatapathId();
    say(
      `[4/7] bridge ${BRIDGE}: datapath_type=${info.datapathType}, protocols=${info.protocols.join(',')}, datapath ${dpid}`,
    );
    check();

    await br.createPort({
      name: TUNNEL,
      type: 'geneve',
      ofportRequest: 32768,
      tunnel: { remoteIp: 'flow', key: 'flow' },
      externalIds: { 'antrea-type': 'tunnel' },
    });
    await br.createPort({
      name: GATEWAY,
      type: 'internal',
      ofportRequest: 32769,
      externalIds: { 'antrea-type': 'gateway' },
    });
    const tunOfport = await br.waitForOFPort(TUNNEL);
    const gwOfport = await br.waitForOFPort(GATEWAY);
    await ip(names.nodeNs, 'addr', 'add', GATEWAY_IP, 'dev', GATEWAY);
    await ip(names.nodeNs, 'link', 'set', GATEWAY, 'up');
    say(
      `[5/7] tunnel ${TUNNEL} (geneve, remote_ip=flow, key=flow) ofport ${tunOfport}; gateway ${GATEWAY} ${GATEWAY_IP} ofport ${gwOfport}`,
    );
    check();

    const hostVeth = 'web-0-a1b2c3';
    await ip(names.nodeNs, 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', names.podNs);
    await ip(names.nodeNs, 'link', 'set', hostVeth, 'up');
    await ip(names.podNs, 'addr', 'add', POD_IP, 'dev', 'eth0');
    await ip(names.podNs, 'link', 'set', 'eth0', 'up');
    await br.createPort({
      name: hostVeth,
      type: 'system',
      externalIds: {
        'antrea-type': 'container',
        'container-id': 'a1b2c3d4e5f6',
        'pod-name': 'web-0',
        'pod-namespace': 'default',
        ip: POD_IP.split('/')[0] ?? '',
      },
    });
    const podOfport = await br.waitForOFPort(hostVeth);
    say(`[6/7] Pod web-0: eth0 ${POD_IP} in ${names.podNs}, veth ${hostVeth} on ${BRIDGE} ofport ${podOfport}`);
    check();

    const ping = await runner.run(
      'ip',
      ['netns', 'exec', names.podNs, 'ping', '-c', '3', '-i', '0.2', '-W', '2', GATEWAY_IP.split('/')[0] ?? ''],
      { signal, timeoutMs: 15_000, okExitCodes: [1] },
    );
    const received = /(\d+) received/.exec(ping.stdout)?.[1] ?? '0';
    say(`[7/7] ping from the Pod to the gateway through ${BRIDGE}: ${received}/3 replies`);
    if (ping.exitCode !== 0) throw new Error(`the Pod cannot reach the gateway:\n${ping.stdout.trim()}`);

    say(`ports on ${BRIDGE} (from the OVSDB monitor cache):`);
    for (const line of describePorts(br.listPorts())) say(line);
    say(`  (plus ${BRIDGE} itself, the bridge's LOCAL port ${OFPORT_LOCAL})`);
    if (opts.hold === true) {
      say('holding the Node up; press Ctrl-C to clean up');
      await aborted(signal);
    }
  } finally {
    say('cleaning up');
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        problems.push(`${what}: ${errorMessage(err)}`);
      }
    };
    await attempt('closing the OVSDB client', async () => client?.close());
    await attempt('stopping OVS', () => ovs.destroy());
    await attempt(`deleting ${names.podNs}`, () => netns.delete(names.podNs));
    await attempt(`deleting ${names.nodeNs}`, () => netns.delete(names.nodeNs));
    for (const p of problems) say(`cleanup problem: ${p}`);
    const left = [
      ...[names.nodeNs, names.podNs].filter((n) => netns.exists(n)).map((n) => `namespace ${n}`),
      ...(existsSync(names.runDir) ? [`directory ${names.runDir}`] : []),
      ...daemonPids.filter((pid) => pid > 0 && pidAlive(pid)).map((pid) => `process ${pid}`),
    ];
    if (left.length > 0) say(`left behind: ${left.join(', ')}`);
    else say('cleaned up: no namespace, process or run directory left');
  }
}
