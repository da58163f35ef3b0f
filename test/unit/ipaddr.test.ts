import t from 'tap';
import {
  canonicalIP,
  cidrContains,
  cidrHas,
  formatIP,
  ipTo16,
  parseCIDR,
  parseIP,
} from '../../src/common/util/ipaddr.ts';
import { uuidV5 } from '../../src/common/util/uuid.ts';

t.test('parses and formats addresses strictly', (t) => {
  t.same([...parseIP('10.1.2.3')!.bytes], [10, 1, 2, 3]);
  t.equal(parseIP('10.1.2.3')!.family, 4);
  for (const bad of [
    '10.1.2',
    '10.1.2.3.4',
    '256.1.1.1',
    '01.1.1.1',
    '1.1.1.1 ',
    '',
    'a.b.c.d',
    '1::2::3',
    'fe80::1%eth0',
    ':1',
    '1:2:3:4:5:6:7:8:9',
    'g::1',
  ]) {
    t.equal(parseIP(bad), undefined, `rejects ${JSON.stringify(bad)}`);
  }
  t.equal(canonicalIP('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  t.equal(canonicalIP('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'first of equal runs');
  t.equal(canonicalIP('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'a single zero group stays');
  t.equal(canonicalIP('::'), '::');
  t.equal(canonicalIP('::1'), '::1');
  t.equal(canonicalIP('1::'), '1::');
  t.equal(canonicalIP('::ffff:1.2.3.4'), '::ffff:1.2.3.4');
  t.equal(canonicalIP('64:ff9b::1.2.3.4'), '64:ff9b::102:304');
  t.throws(() => formatIP(new Uint8Array(5)), RangeError);
  t.end();
});

t.test('CIDRs are masked and compared', (t) => {
  const c = parseCIDR('10.1.2.3/16')!;
  t.equal(c.ip, '10.1.0.0');
  t.equal(c.prefixLength, 16);
  t.equal(parseCIDR('2001:db8::1/32')!.ip, '2001:db8::');
  t.equal(parseCIDR('0.0.0.0/0')!.ip, '0.0.0.0');
  for (const bad of ['10.0.0.0', '10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/08', 'x/8']) {
    t.equal(parseCIDR(bad), undefined, `rejects ${bad}`);
  }
  t.ok(cidrContains(parseCIDR('10.0.0.0/8')!, parseCIDR('10.1.0.0/16')!));
  t.ok(cidrContains(parseCIDR('10.0.0.0/8')!, parseCIDR('10.0.0.0/8')!));
  t.notOk(cidrContains(parseCIDR('10.0.0.0/16')!, parseCIDR('10.0.0.0/8')!));
  t.notOk(cidrContains(parseCIDR('10.0.0.0/8')!, parseCIDR('11.0.0.0/16')!));
  t.notOk(cidrContains(parseCIDR('0.0.0.0/0')!, parseCIDR('::/64')!), 'families differ');
  t.ok(cidrHas(parseCIDR('10.0.0.0/8')!, parseIP('10.200.1.1')!));
  t.notOk(cidrHas(parseCIDR('10.0.0.0/8')!, parseIP('11.0.0.1')!));
  t.end();
});

t.test('16-byte form is IPv4-mapped for IPv4', (t) => {
  t.same([...ipTo16('1.2.3.4')], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
  t.equal(ipTo16('2001:db8::1').length, 16);
  t.throws(() => ipTo16('nope'), RangeError);
  t.end();
});

t.test('UUIDv5 matches the RFC example and is stable', (t) => {
  const dns = uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8');
  t.equal(dns('www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  const ns = uuidV5('e4f24a48-ca1f-4d5b-819c-ea7632b22115');
  t.equal(ns('namespace=default And podSelector='), ns('namespace=default And podSelector='));
  t.not(ns('namespace=a And podSelector='), ns('namespace=b And podSelector='));
  t.match(ns('x'), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.throws(() => uuidV5('not-a-uuid'), RangeError);
  t.end();
});
