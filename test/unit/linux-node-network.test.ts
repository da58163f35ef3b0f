/**
 * LinuxNodeNetwork.moveTransportAddresses over a fake netlink host: the addresses move, and a
 * gateway route that the kernel first refuses with ENETUNREACH (the bridge's internal port taken
 * down by ovs-vswitchd meanwhile) is retried until it goes in; other errors, and ENETUNREACH past
 * the deadline, are thrown.
 */
import t from 'tap';
import { HostNetworkError } from '../../src/common/host/errors.ts';
import type { Clock } from '../../src/common/util/clock.ts';
import type { Netlink } from '../../src/platform/linux/netlink.ts';
import { LinuxNodeNetwork } from '../../src/platform/linux/node-network.ts';

/** A clock whose sleeps return at once and move it forward. */
function instantClock(): Clock & { elapsed: number } {
  const c = {
    elapsed: 0,
    monotonic: () => c.elapsed,
    now: () => c.elapsed,
    sleep: (ms: number) => {
      c.elapsed += ms;
      return Promise.resolve();
    },
  };
  return c as unknown as Clock & { elapsed: number };
}

interface FakeLink {
  index: number;
  name: string;
  up: boolean;
  mtu: number;
  mac: string;
}

function fakeHost(refusals: (string | undefined)[]): { host: Netlink; log: string[] } {
  const links: FakeLink[] = [
    { index: 2, name: 'eth1', up: true, mtu: 1500, mac: '02:00:00:00:00:01' },
    { index: 7, name: 'br-phy', up: false, mtu: 1500, mac: '02:00:00:00:00:01' },
  ];
  const addrs = new Map<number, string[]>([[2, ['192.0.2.11/24']]]);
  const log: string[] = [];
  const host = {
    link: (name: string) => Promise.resolve(links.find((l) => l.name === name)),
    setLink: (index: number, o: { up?: boolean }) => {
      const l = links.find((x) => x.index === index);
      if (l !== undefined && o.up !== undefined) l.up = o.up;
      log.push(`up ${index}`);
      return Promise.resolve();
    },
    addresses: (index: number) =>
      Promise.resolve((addrs.get(index) ?? []).map((cidr) => ({ index, cidr, scope: 0, family: 4 }))),
    addAddress: (index: number, cidr: string) => {
      addrs.set(index, [...(addrs.get(index) ?? []), cidr]);
      return Promise.resolve();
    },
    deleteAddress: (index: number, cidr: string) => {
      addrs.set(
        index,
        (addrs.get(index) ?? []).filter((a) => a !== cidr),
      );
      return Promise.resolve();
    },
    routes: (family: number) =>
      Promise.resolve(family === 4 ? [{ dst: '0.0.0.0/0', gateway: '192.0.2.1', oif: 2, protocol: 3 }] : []),
    addRoute: (r: { dst: string; gateway?: string; oif?: number }) => {
      const errno = refusals.shift();
      if (errno !== undefined) {
        // ovs-vswitchd took the port down meanwhile
        const br = links.find((l) => l.index === 7);
        if (br !== undefined) br.up = false;
        return Promise.reject(
          new HostNetworkError('HOST_OPERATION_FAILED', `add route ${r.dst}: ${errno}`, { details: { errno } }),
        );
      }
      log.push(`route ${r.dst} via ${r.gateway ?? ''} oif ${r.oif ?? 0}`);
      return Promise.resolve();
    },
  };
  return { host: host as unknown as Netlink, log };
}

t.test(
  'a gateway route refused with ENETUNREACH is retried (the link brought up again) until it goes in',
  async (t) => {
    const { host, log } = fakeHost(['ENETUNREACH', 'ENETUNREACH']);
    const clock = instantClock();
    const net = new LinuxNodeNetwork({ host, clock });
    const moved = await net.moveTransportAddresses({ from: 'eth1', to: 'br-phy' });
    t.same(moved.addresses, ['192.0.2.11/24'], 'the address is on br-phy');
    t.same(log, ['up 7', 'up 7', 'up 7', 'route 0.0.0.0/0 via 192.0.2.1 oif 7'], 'up again before each retry');
    t.equal(clock.elapsed, 100, 'two short waits');
  },
);

t.test('ENETUNREACH past the deadline, and any other error, are thrown', async (t) => {
  const always = fakeHost(Array.from({ length: 1000 }, () => 'ENETUNREACH'));
  await t.rejects(
    new LinuxNodeNetwork({ host: always.host, clock: instantClock() }).moveTransportAddresses({
      from: 'eth1',
      to: 'br-phy',
    }),
    /add route 0\.0\.0\.0\/0: ENETUNREACH/,
  );
  const other = fakeHost(['EEXIST']);
  await t.rejects(
    new LinuxNodeNetwork({ host: other.host, clock: instantClock() }).moveTransportAddresses({
      from: 'eth1',
      to: 'br-phy',
    }),
    /EEXIST/,
  );
  t.same(
    other.log.filter((l) => l.startsWith('route')),
    [],
    'not retried',
  );
});
