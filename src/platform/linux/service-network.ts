/**
 * The Linux host side of NodePort Services (Antrea's route_linux.go proxyAll pieces, facts §4.1-
 * §4.3): an ipset `ANTREA-NODEPORT-IP` (hash:ip,port) of `<address>,<proto>:<port>`, nat rules
 * DNATing its members to 169.254.0.252 (chains ANTREA-PREROUTING and ANTREA-OUTPUT), a route
 * `169.254.0.252 via 169.254.0.253 dev <gateway> onlink` with a permanent neighbour
 * 169.254.0.253 → aa:bb:cc:dd:ee:ff, and a masquerade of the Node's own traffic into the gateway
 * (chain ANTREA-SVC-POSTROUTING) so replies come back through the host. Everything runs in the
 * caller's network namespace through the command runner; rules are written with
 * `iptables-restore --noflush` (our chains are replaced whole) and set contents swapped atomically.
 */
import type { NodePortSpec, ServiceHostNetwork } from '../../common/host/service-network.ts';
import type { CommandRunner } from '../../common/util/exec.ts';
import { ValidationError } from '../../common/util/errors.ts';
import { ipFamily } from '../../common/util/ip.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';

export const NODEPORT_IPSET = 'ANTREA-NODEPORT-IP';
const VIRTUAL_SERVICE_IP = '169.254.0.253';
const VIRTUAL_NODEPORT_DNAT_IP = '169.254.0.252';
const GLOBAL_VIRTUAL_MAC = 'aa:bb:cc:dd:ee:ff';

export class LinuxServiceNetwork implements ServiceHostNetwork {
  private readonly runner: CommandRunner;
  private readonly logger: Logger;
  private addresses: readonly string[] = [];
  private initialized = false;

  constructor(o: { runner: CommandRunner; logger?: Logger }) {
    this.runner = o.runner;
    this.logger = (o.logger ?? nullLogger).child({ component: 'service-network' });
  }

  async initialize(o: { gatewayName: string; nodePortAddresses: readonly string[] }): Promise<void> {
    o.nodePortAddresses.forEach((ip, i) => {
      if (ipFamily(ip) !== 4) throw new ValidationError(`nodePortAddresses[${i}]`, `${JSON.stringify(ip)} is not IPv4`);
    });
    if (!/^[A-Za-z0-9._-]{1,15}$/.test(o.gatewayName))
      throw new ValidationError('gatewayName', `bad interface name ${JSON.stringify(o.gatewayName)}`);
    const gw = o.gatewayName;
    const r = this.runner;
    await r.run('ip', [
      'neigh',
      'replace',
      VIRTUAL_SERVICE_IP,
      'lladdr',
      GLOBAL_VIRTUAL_MAC,
      'nud',
      'permanent',
      'dev',
      gw,
    ]);
    await r.run('ip', ['route', 'replace', `${VIRTUAL_SERVICE_IP}/32`, 'dev', gw, 'scope', 'link']);
    await r.run('ip', [
      'route',
      'replace',
      `${VIRTUAL_NODEPORT_DNAT_IP}/32`,
      'via',
      VIRTUAL_SERVICE_IP,
      'dev',
      gw,
      'onlink',
    ]);
    await r.run('ipset', ['create', NODEPORT_IPSET, 'hash:ip,port', '-exist']);
    const rules = [
      '*nat',
      ':ANTREA-PREROUTING - [0:0]',
      ':ANTREA-OUTPUT - [0:0]',
      ':ANTREA-SVC-POSTROUTING - [0:0]',
      `-A ANTREA-PREROUTING -m comment --comment "Antrea: DNAT external to NodePort packets" -m set --match-set ${NODEPORT_IPSET} dst,dst -j DNAT --to-destination ${VIRTUAL_NODEPORT_DNAT_IP}`,
      `-A ANTREA-OUTPUT -m comment --comment "Antrea: DNAT local to NodePort packets" -m set --match-set ${NODEPORT_IPSET} dst,dst -j DNAT --to-destination ${VIRTUAL_NODEPORT_DNAT_IP}`,
      `-A ANTREA-SVC-POSTROUTING -m comment --comment "Antrea: masquerade LOCAL traffic" -o ${gw} -m addrtype ! --src-type LOCAL --limit-iface-out -m addrtype --src-type LOCAL -j MASQUERADE`,
      `-A ANTREA-SVC-POSTROUTING -m comment --comment "Antrea: masquerade OVS virtual source IP" -s ${VIRTUAL_SERVICE_IP}/32 -j MASQUERADE`,
      'COMMIT',
      '',
    ].join('\n');
    await r.run('iptables-restore', ['--noflush', '-w'], { input: rules });
    for (const [chain, jump] of [
      ['PREROUTING', 'ANTREA-PREROUTING'],
      ['OUTPUT', 'ANTREA-OUTPUT'],
      ['POSTROUTING', 'ANTREA-SVC-POSTROUTING'],
    ] as const) {
      const spec = [chain, '-m', 'comment', '--comment', `Antrea: jump to ${jump}`, '-j', jump];
      const has = await r.run('iptables', ['-w', '-t', 'nat', '-C', ...spec], { okExitCodes: [1] });
      if (has.exitCode !== 0)
        await r.run('iptables', ['-w', '-t', 'nat', chain === 'POSTROUTING' ? '-A' : '-I', ...spec]);
    }
    this.addresses = [...o.nodePortAddresses];
    this.initialized = true;
    this.logger.info('NodePort host networking ready', { gateway: gw, addresses: this.addresses });
  }

  async setNodePorts(ports: readonly NodePortSpec[]): Promise<void> {
    if (!this.initialized) throw new ValidationError('serviceNetwork', 'setNodePorts called before initialize');
    const tmp = `${NODEPORT_IPSET}-T`;
    const lines = [`create ${tmp} hash:ip,port -exist`, `flush ${tmp}`];
    for (const p of ports) {
      if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535)
        throw new ValidationError('port', `${p.port} is not a port`);
      for (const a of this.addresses) lines.push(`add ${tmp} ${a},${p.protocol.toLowerCase()}:${p.port}`);
    }
    lines.push(`swap ${tmp} ${NODEPORT_IPSET}`, `destroy ${tmp}`, '');
    await this.runner.run('ipset', ['restore'], { input: lines.join('\n') });
    this.logger.debug('NodePorts set', { ports: ports.length });
  }
}
