/**
 * antrea-agent start-up for a Node, as a process inside a Node namespace with its own OVS:
 * br-int (datapath from the configuration), antrea-gw0 (internal port 32769 with the first address
 * of the Pod CIDR and the MTU), antrea-tun0 (flow-based Geneve, 32768), sysctls, the pipeline's
 * base flows with table names; a restart keeps the gateway MAC and moves to a new flow round;
 * SIGTERM stops it cleanly without touching the datapath; bad or unsupported configuration makes it
 * exit with the fields named. A Pod's gratuitous ARPs reach OVS.
 */
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_ENTRY, AgentNode } from '../helpers/agent-node.ts';
import { integrationSkipReason, runner, uniqueName } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

async function vsctl(node: AgentNode, ...args: string[]): Promise<string> {
  return (await runner.run('ovs-vsctl', [`--db=${node.ovs.dbEndpoint}`, ...args], { timeoutMs: 20_000 })).stdout.trim();
}

t.test('start-up builds the Node; a restart converges; SIGTERM leaves the datapath', async (t) => {
  const node = await AgentNode.create(t, { podCIDR: '10.10.7.0/24' });
  await node.start();
  t.equal(await vsctl(node, 'get', 'Bridge', 'br-int', 'datapath_type'), 'netdev');
  t.equal(await vsctl(node, 'get', 'Bridge', 'br-int', 'protocols'), '[OpenFlow10, OpenFlow15]');
  t.equal(await vsctl(node, 'get', 'Interface', 'antrea-gw0', 'type'), 'internal');
  t.equal(await vsctl(node, 'get', 'Interface', 'antrea-gw0', 'ofport'), '32769');
  t.equal(await vsctl(node, 'get', 'Interface', 'antrea-gw0', 'mtu_request'), '1450');
  t.equal(await vsctl(node, 'get', 'Port', 'antrea-gw0', 'external_ids:antrea-type'), 'gateway');
  t.equal(await vsctl(node, 'get', 'Interface', 'antrea-tun0', 'type'), 'geneve');
  t.equal(await vsctl(node, 'get', 'Interface', 'antrea-tun0', 'ofport'), '32768');
  t.equal(await vsctl(node, 'get', 'Interface', 'antrea-tun0', 'options'), '{key=flow, remote_ip=flow}');
  t.equal(await vsctl(node, 'get', 'Port', 'antrea-tun0', 'external_ids:antrea-type'), 'tunnel');

  const gw = (await runner.run('ip', ['-n', node.ns, '-o', 'addr', 'show', 'antrea-gw0'])).stdout;
  t.match(gw, /inet 10\.10\.7\.1\/24/, 'the gateway holds the first address of the Pod CIDR');
  const gwLink = (await runner.run('ip', ['-n', node.ns, 'link', 'show', 'antrea-gw0'])).stdout;
  t.match(gwLink, /mtu 1450/);
  t.match(gwLink, /UP/);
  const mac = /link\/ether ([0-9a-f:]+)/.exec(gwLink)?.[1];
  const sysctl = async (k: string): Promise<string> =>
    (await runner.run('ip', ['netns', 'exec', node.ns, 'cat', `/proc/sys/${k}`])).stdout.trim();
  t.equal(await sysctl('net/ipv4/ip_forward'), '1');
  t.equal(await sysctl('net/ipv4/conf/antrea-gw0/arp_announce'), '1');

  const flows = await node.flows();
  t.ok(
    flows.some((f) => f.includes('ct(table=6,zone=65520,nat)')),
    'conntrack flows',
  );
  t.ok(
    flows.some((f) => f.includes('priority=200,in_port=32768')),
    'tunnel classifier flow',
  );
  const byName = (
    await runner.run('ovs-ofctl', [
      '-O',
      'OpenFlow15',
      '--no-stats',
      'dump-flows',
      `unix:${node.ovs.bridgeMgmtSocketPath('br-int')}`,
      'table=ConntrackZone',
    ])
  ).stdout;
  t.match(byName, /table=5, priority=200,ip actions=ct\(table=6,zone=65520,nat\)/, 'OVS knows the table names');
  t.equal(await vsctl(node, 'get', 'Bridge', 'br-int', 'external_ids:roundNum'), '"1"');

  // Gratuitous ARPs of a new Pod reach OVS (ARPSpoofGuard counts them).
  const pod = { containerId: uniqueName('garp'), netns: await node.podNetns(t), name: 'garp' };
  const add = await node.cni('ADD', pod);
  const ip = ((add.json?.['ips'] as { address: string }[])[0]?.address ?? '').split('/')[0] ?? '';
  const hostName = (add.json?.['interfaces'] as { name: string }[])[0]?.name ?? '';
  const ofport = await node.ofport(hostName);
  // OVS folds datapath counters into flow statistics about once a second.
  let arpFlow = '';
  for (let i = 0; i < 40; i++) {
    arpFlow = (
      await runner.run('ovs-ofctl', [
        '-O',
        'OpenFlow15',
        'dump-flows',
        `unix:${node.ovs.bridgeMgmtSocketPath('br-int')}`,
        `table=ARPSpoofGuard,arp,in_port=${ofport}`,
      ])
    ).stdout;
    if (Number(/n_packets=(\d+)/.exec(arpFlow)?.[1] ?? 0) >= 3) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.match(arpFlow, new RegExp(`arp_spa=${ip.replaceAll('.', '\\.')}`), 'the Pod ARP flow');
  t.ok(Number(/n_packets=(\d+)/.exec(arpFlow)?.[1]) >= 3, `is hit by the three announcements: ${arpFlow.trim()}`);

  t.equal(await node.stop(), 0, 'SIGTERM: exit code 0');
  t.notOk(existsSync(node.socket), 'the CNI socket is removed');
  t.same((await node.flows()).length, flows.length + 5, "the datapath keeps every flow (base + the Pod's)");

  await node.start();
  const gwLink2 = (await runner.run('ip', ['-n', node.ns, 'link', 'show', 'antrea-gw0'])).stdout;
  t.equal(/link\/ether ([0-9a-f:]+)/.exec(gwLink2)?.[1], mac, 'the gateway keeps its MAC');
  t.equal(await vsctl(node, 'get', 'Bridge', 'br-int', 'external_ids:roundNum'), '"2"', 'a new flow round');
  t.same(await node.violations(), []);
  t.equal((await node.cni('DEL', pod)).exitCode, 0);
});

t.test('noEncap: no tunnel port', async (t) => {
  const node = await AgentNode.create(t, { extraConfig: 'trafficEncapMode: noEncap' });
  await node.start();
  t.same(await node.ports(), ['antrea-gw0']);
  t.match((await runner.run('ip', ['-n', node.ns, 'link', 'show', 'antrea-gw0'])).stdout, /mtu 1500/, 'no overhead');
});

t.test('bad configuration: the agent exits and names every field', async (t) => {
  const node = await AgentNode.create(t);
  const run = async (conf: string): Promise<{ code: number; stderr: string }> => {
    const path = join(node.dir, `bad-${uniqueName('c')}.conf`);
    writeFileSync(path, conf);
    const r = await runner.run(
      'ip',
      [
        'netns',
        'exec',
        node.ns,
        process.execPath,
        AGENT_ENTRY,
        '--config',
        path,
        '--pod-cidr',
        '10.10.1.0/24',
        '--node-ip',
        '192.0.2.10',
      ],
      { okExitCodes: [1], timeoutMs: 60_000 },
    );
    return { code: r.exitCode, stderr: r.stderr };
  };
  const bad = await run(
    `ovsRunDir: ${node.ovs.runDir}\ncniSocket: ${node.socket}\novsDatapathType: dpdk\ntunnelPort: -1\ntypo: 1\n`,
  );
  t.equal(bad.code, 1);
  t.match(bad.stderr, /ovsDatapathType: must be one of system, netdev/);
  t.match(bad.stderr, /tunnelPort: must be an integer in 0-65535/);
  t.match(bad.stderr, /typo: unknown field/);
  const unsupported = await run(
    `ovsRunDir: ${node.ovs.runDir}\ncniSocket: ${node.socket}\nstateDir: ${node.stateDir}\novsDatapathType: netdev\ntunnelType: stt\n`,
  );
  t.equal(unsupported.code, 1);
  t.match(unsupported.stderr, /tunnelType: tunnel type "stt" with datapath "netdev" is not supported on linux/);
  t.equal(await vsctl(node, 'list-br'), '', 'no bridge was created');
  const noCidr = await runner.run(
    'ip',
    ['netns', 'exec', node.ns, process.execPath, AGENT_ENTRY, '--config', node.configPath],
    { okExitCodes: [1], timeoutMs: 60_000 },
  );
  t.match(noCidr.stderr, /node\.podCIDRs: at least one Pod CIDR is required/);
});
