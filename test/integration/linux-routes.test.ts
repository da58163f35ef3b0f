/**
 * The Linux RouteClient against the real kernel in a private namespace: ipset, iptables chains and
 * jumps, peer routes (tunnel on-link via the gateway, direct via the Node IP), reconcile of stale
 * routes, and the periodic sync restoring a rule, a jump, a set entry and a route removed by hand.
 */
import t from 'tap';
import type { RouteConfig } from '../../src/common/host/routes.ts';
import { Netlink } from '../../src/platform/linux/netlink.ts';
import { netnsRunner } from '../../src/platform/linux/netns.ts';
import { LinuxRouteClient } from '../../src/platform/linux/routes.ts';
import { integrationSkipReason, runner, tempNetns } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

t.test('rules, routes, reconcile and sync in a namespace', async (t) => {
  const ns = await tempNetns(t, 'rt-');
  const ip = (...args: string[]): Promise<unknown> => runner.run('ip', ['-n', ns, ...args]);
  await ip('link', 'add', 'antrea-gw0', 'type', 'veth', 'peer', 'name', 'gw-peer');
  await ip('link', 'set', 'gw-peer', 'up');
  await ip('addr', 'add', '10.10.1.1/24', 'dev', 'antrea-gw0');
  await ip('link', 'set', 'antrea-gw0', 'up');
  await ip('link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'uplink-peer');
  await ip('link', 'set', 'uplink-peer', 'up');
  await ip('addr', 'add', '192.0.2.11/24', 'dev', 'uplink');
  await ip('link', 'set', 'uplink', 'up');
  const host = Netlink.openInNetns(`/run/netns/${ns}`);
  t.teardown(() => host.close());
  const inNs = netnsRunner(runner, ns);
  const routes = new LinuxRouteClient({ host, runner: inNs });
  const cfg: RouteConfig = {
    trafficEncapMode: 'hybrid',
    noSNAT: false,
    snatFullyRandomPorts: false,
    gatewayName: 'antrea-gw0',
    localPodCIDRs: ['10.10.1.0/24'],
    tunnelType: 'geneve',
    tunnelPort: 6081,
  };
  const sh = async (cmd: string, ...args: string[]): Promise<string> =>
    (await inNs.run(cmd, args, { okExitCodes: [1] })).stdout;
  const natRules = (): Promise<string> => sh('iptables', '-t', 'nat', '-S');
  const routeText = (): Promise<string> => sh('ip', 'route', 'show');

  await routes.sync(); // before initialize: nothing
  t.notMatch(await natRules(), /ANTREA/, 'sync before initialize does nothing');
  await routes.initialize(cfg);
  await routes.initialize(cfg); // idempotent
  const nat = await natRules();
  t.match(nat, '-A POSTROUTING -m comment --comment "Antrea: jump to Antrea postrouting rules" -j ANTREA-POSTROUTING');
  t.equal(
    nat.split('\n').filter((l) => l.includes('-j ANTREA-POSTROUTING')).length,
    1,
    'one jump after two initializes',
  );
  t.match(nat, /-A ANTREA-POSTROUTING -s 10\.10\.1\.0\/24 .*ANTREA-POD-IP dst .*MASQUERADE/);
  t.match(await sh('iptables', '-t', 'raw', '-S'), /--dport 6081 .*NOTRACK/);
  t.match(await sh('iptables', '-S', 'ANTREA-FORWARD'), /-i antrea-gw0 .*ACCEPT/);

  await routes.addRoutes({
    podCIDR: '10.10.2.0/24',
    nodeName: 'node-2',
    nodeIP: '192.0.2.12',
    peerGatewayIP: '10.10.2.1',
    via: 'direct',
  });
  await routes.addRoutes({
    podCIDR: '10.10.3.0/24',
    nodeName: 'node-3',
    nodeIP: '198.51.100.13',
    peerGatewayIP: '10.10.3.1',
    via: 'tunnel',
  });
  let r = await routeText();
  t.match(r, '10.10.2.0/24 via 192.0.2.12 dev uplink proto 145');
  t.match(r, '10.10.3.0/24 via 10.10.3.1 dev antrea-gw0 proto 145 onlink');
  t.match(
    await sh('ipset', 'list', 'ANTREA-POD-IP'),
    /10\.10\.1\.0\/24[\s\S]*10\.10\.2\.0\/24|10\.10\.2\.0\/24[\s\S]*10\.10\.1\.0\/24/,
  );

  // Removed by hand: the masquerade rule, the jump, a set entry and a route. sync() restores all.
  await sh('iptables', '-t', 'nat', '-F', 'ANTREA-POSTROUTING');
  await sh(
    'iptables',
    '-t',
    'nat',
    '-D',
    'POSTROUTING',
    '-m',
    'comment',
    '--comment',
    'Antrea: jump to Antrea postrouting rules',
    '-j',
    'ANTREA-POSTROUTING',
  );
  await sh('ipset', 'del', 'ANTREA-POD-IP', '10.10.3.0/24');
  await sh('ip', 'route', 'del', '10.10.2.0/24');
  t.notMatch(await natRules(), /MASQUERADE/, 'rules gone');
  await routes.sync();
  t.match(await natRules(), /Antrea: masquerade Pod to external packets/, 'masquerade rule back');
  t.match(await natRules(), /-A POSTROUTING .*-j ANTREA-POSTROUTING/, 'jump back');
  t.match(await sh('ipset', 'list', 'ANTREA-POD-IP'), /10\.10\.3\.0\/24/, 'set entry back');
  t.match(await routeText(), '10.10.2.0/24 via 192.0.2.12 dev uplink proto 145', 'route back');

  // A peer changing from direct to tunnel; then reconcile drops what is not desired.
  await routes.addRoutes({
    podCIDR: '10.10.2.0/24',
    nodeName: 'node-2',
    nodeIP: '192.0.2.12',
    peerGatewayIP: '10.10.2.1',
    via: 'tunnel',
  });
  t.match(await routeText(), '10.10.2.0/24 via 10.10.2.1 dev antrea-gw0 proto 145 onlink');
  await routes.reconcile(['10.10.2.0/24']);
  r = await routeText();
  t.notMatch(r, /10\.10\.3\.0/, 'stale route reconciled away');
  t.notMatch(await sh('ipset', 'list', 'ANTREA-POD-IP'), /10\.10\.3\.0/, 'stale set entry removed');
  t.match(await sh('ipset', 'list', 'ANTREA-POD-IP'), /10\.10\.1\.0\/24/, 'local Pod CIDR kept');
  await routes.deleteRoutes('10.10.2.0/24');
  await routes.deleteRoutes('10.10.2.0/24');
  t.notMatch(await routeText(), /10\.10\.2\.0/, 'deleted (twice: idempotent)');
  t.match(await routeText(), /10\.10\.1\.0\/24 dev antrea-gw0/, 'the local Pod CIDR route is untouched');
});
