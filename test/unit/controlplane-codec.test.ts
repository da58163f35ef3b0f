import t from 'tap';
import type { Test } from 'tap';
import {
  ControlplaneEncoder,
  decodeObject,
  type DecodedWatchEvent,
  WatchDecoder,
} from '../../src/common/apis/controlplane/codec.ts';
import { GroupMemberMsg, IPNetMsg, NetworkPolicyRuleMsg } from '../../src/common/apis/controlplane/schema.ts';
import type {
  AddressGroup,
  AddressGroupPatch,
  NetworkPolicy,
  NetworkPolicyStatus,
} from '../../src/common/apis/controlplane/types.ts';
import { fromJSON, toJSON } from '../../src/common/apis/protobuf/json.ts';
import { readEnvelope, WatchFrameReader } from '../../src/common/apis/protobuf/k8s.ts';
import { decode, encode, ProtoReader, ProtoWriter } from '../../src/common/apis/protobuf/wire.ts';
import { isAntreaError } from '../../src/common/util/errors.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (...parts: (string | number[])[]): string =>
  parts.map((p) => (typeof p === 'string' ? p.replace(/\s+/g, '') : Buffer.from(p).toString('hex'))).join('');
const ascii = (s: string): string => Buffer.from(s).toString('hex');
/** 10.0.0.x as the 16-byte IPv4-mapped form. */
const v4mapped = (last: number): string => `00000000000000000000ffff0a0000${last.toString(16).padStart(2, '0')}`;

t.test('varints: golden bytes, including negative numbers as Go writes int32/int64', (t) => {
  const cases: [number, string][] = [
    [0, '00'],
    [1, '01'],
    [127, '7f'],
    [128, '8001'],
    [300, 'ac02'],
    [2 ** 31, '8080808008'],
    [2 ** 35 + 5, '8580808080' + '01'],
    [-1, 'ffffffffffffffffff01'],
    [-2, 'feffffffffffffffff01'],
    [-(2 ** 31), '80808080f8ffffffff01'],
    [-(2 ** 40) - 3, 'fdffffffffdfffffff01'],
  ];
  for (const [v, want] of cases) {
    const w = new ProtoWriter(4);
    w.varint(v);
    t.equal(hex(w.finish()), want, `encode ${v}`);
    const r = new ProtoReader(w.finish());
    t.equal(r.varint64(), v, `decode ${v}`);
    t.ok(r.done);
  }
  // int32 fields take the low 32 bits, like Go.
  const w = new ProtoWriter();
  w.varint(-5);
  t.equal(new ProtoReader(w.finish()).varint32(), -5);
  t.end();
});

t.test('messages: golden bytes derived from the field numbers', (t) => {
  // IPNet {1 ip (16 bytes), 2 prefixLength}: IPv4 keeps its v4 prefix length.
  t.equal(
    hex(encode(IPNetMsg, { ip: '10.0.0.0', prefixLength: 24 })),
    bytes('0a10', v4mapped(0), '1018'),
    'IPNet 10.0.0.0/24',
  );
  // GroupMember {1 pod {1 name, 2 namespace}, 3 ips}
  t.equal(
    hex(encode(GroupMemberMsg, { pod: { name: 'a', namespace: 'ns' }, ips: ['10.0.0.1'] })),
    bytes('0a07', '0a01', ascii('a'), '1202', ascii('ns'), '1a10', v4mapped(1)),
    'GroupMember with a Pod and an IP',
  );
  // A K8s NetworkPolicy ingress rule: direction, from, (empty) to always written; priority -1.
  const rule = {
    direction: 'In',
    from: { addressGroups: ['g'], ipBlocks: [] },
    to: { addressGroups: [], ipBlocks: [] },
    services: [{ protocol: 'TCP', port: 80 }],
    priority: -1,
  };
  t.equal(
    hex(encode(NetworkPolicyRuleMsg, rule)),
    bytes(
      '0a02',
      ascii('In'),
      '1203 0a01',
      ascii('g'),
      '1a00',
      // Service {1 protocol, 2 port IntOrString {1 type 0, 2 intVal 80, 3 strVal ""}}
      '220d 0a03',
      ascii('TCP'),
      '1206 0800 1050 1a00',
      '28 ffffffffffffffffff01',
    ),
    'NetworkPolicyRule',
  );
  // A named port: IntOrString type 1 with strVal.
  t.equal(
    hex(encode(NetworkPolicyRuleMsg, { ...rule, services: [{ port: 'http' }], priority: 0 })),
    bytes('0a02', ascii('In'), '1203 0a01', ascii('g'), '1a00', '220c 120a 0801 1000 1a04', ascii('http'), '2800'),
  );
  t.end();
});

t.test('watch frame: golden bytes of the Kubernetes framing', (t) => {
  const enc = new ControlplaneEncoder();
  const frame = enc.watchFrame('protobuf', 'ADDED', 'AddressGroup', {
    metadata: { name: 'g', uid: 'g' },
    groupMembers: [],
  });
  const meta = bytes('0a06', '0a01', ascii('g'), '2a01', ascii('g'));
  const typeMeta = bytes('0a1e', ascii('controlplane.antrea.io/v1beta2'), '120c', ascii('AddressGroup'));
  const unknown = bytes('0a2e', typeMeta, '1208', meta, '1a00', '2200');
  const envelope = bytes('6b387300', unknown);
  t.equal(envelope.length / 2, 66);
  const event = bytes('0a05', ascii('ADDED'), '1244', '0a42', envelope);
  t.equal(hex(frame), bytes('0000004d', event), 'length prefix + WatchEvent{type, RawExtension{raw: envelope}}');

  const decoded = new WatchDecoder('protobuf').push(frame);
  t.same(decoded, [
    { type: 'ADDED', kind: 'AddressGroup', object: { metadata: { name: 'g', uid: 'g' }, groupMembers: [] } },
  ]);
  t.end();
});

const policy: NetworkPolicy = {
  metadata: { name: 'uid-1', uid: 'uid-1', generation: 7, labels: { b: '2', a: '1' } },
  rules: [
    {
      direction: 'In',
      from: {
        addressGroups: ['ag1', 'ag2'],
        ipBlocks: [
          { cidr: { ip: '192.168.0.0', prefixLength: 16 }, except: [{ ip: '192.168.1.0', prefixLength: 24 }] },
        ],
      },
      to: { addressGroups: [], ipBlocks: [] },
      services: [
        { protocol: 'TCP', port: 8080, endPort: 8090 },
        { protocol: 'UDP', port: 'dns' },
        { protocol: 'ICMP', icmpType: 8, icmpCode: 0 },
      ],
      priority: -1,
      action: 'Allow',
      enableLogging: true,
      name: 'r1',
      l7Protocols: [{ http: { host: 'x', method: 'GET', path: '/' } }, { tls: { sni: 's' } }],
      logLabel: 'lbl',
    },
    {
      direction: 'Out',
      from: { addressGroups: [], ipBlocks: [] },
      to: {
        addressGroups: [],
        ipBlocks: [{ cidr: { ip: '2001:db8::', prefixLength: 32 }, except: [] }],
        fqdns: ['example.com'],
        toServices: [{ name: 'svc', namespace: 'ns' }],
      },
      services: [],
      priority: 0,
      appliedToGroups: ['atg2'],
    },
  ],
  appliedToGroups: ['atg1'],
  priority: 1.5,
  tierPriority: 250,
  sourceRef: { type: 'AntreaClusterNetworkPolicy', namespace: '', name: 'acnp', uid: 'u' },
};

t.test('round trips of every kind in both encodings', (t) => {
  const enc = new ControlplaneEncoder();
  const ag: AddressGroup = {
    metadata: { name: 'ag1', uid: 'ag1' },
    groupMembers: [
      {
        pod: { name: 'p', namespace: 'ns' },
        ips: ['10.0.0.1', 'fd00::1'],
        ports: [{ port: 80, name: 'http', protocol: 'TCP' }],
      },
      { externalEntity: { name: 'e', namespace: 'ns' }, ips: ['2001:db8::5'] },
      { node: { name: 'n1' }, ips: ['172.16.0.1'] },
    ],
  };
  const patch: AddressGroupPatch = {
    metadata: { name: 'ag1', uid: 'ag1' },
    addedGroupMembers: [{ pod: { name: 'q', namespace: 'ns' }, ips: ['10.0.0.2'] }],
    removedGroupMembers: [{ service: { name: 's', namespace: 'ns' } }],
  };
  const status: NetworkPolicyStatus = {
    metadata: { name: 'uid-1' },
    nodes: [{ nodeName: 'n1', generation: 2 ** 40, realizationFailure: true, message: 'boom' }],
  };
  for (const encoding of ['protobuf', 'json'] as const) {
    t.same(
      decodeObject(encoding, enc.object(encoding, 'NetworkPolicy', policy)),
      { kind: 'NetworkPolicy', object: policy },
      `${encoding} NetworkPolicy`,
    );
    t.same(
      decodeObject(encoding, enc.object(encoding, 'AddressGroup', ag)),
      { kind: 'AddressGroup', object: ag },
      `${encoding} AddressGroup`,
    );
    t.same(
      decodeObject(encoding, enc.object(encoding, 'AddressGroupPatch', patch)),
      { kind: 'AddressGroupPatch', object: patch },
      `${encoding} AddressGroupPatch`,
    );
    t.same(
      decodeObject(encoding, enc.object(encoding, 'NetworkPolicyStatus', status)),
      { kind: 'NetworkPolicyStatus', object: status },
      `${encoding} NetworkPolicyStatus`,
    );
    t.same(
      decodeObject(
        encoding,
        enc.object(encoding, 'NetworkPolicyList', { metadata: { resourceVersion: '5' }, items: [policy] }),
      ),
      { kind: 'NetworkPolicyList', object: { metadata: { resourceVersion: '5' }, items: [policy] } },
      `${encoding} NetworkPolicyList`,
    );
  }
  // JSON keeps Antrea's representation: IPs are base64 of the 16-byte form.
  const json = JSON.parse(enc.object('json', 'AddressGroup', ag).toString()) as {
    kind: string;
    apiVersion: string;
    groupMembers: { ips: string[] }[];
  };
  t.equal(json.kind, 'AddressGroup');
  t.equal(json.apiVersion, 'controlplane.antrea.io/v1beta2');
  t.equal(json.groupMembers[0]?.ips[0], Buffer.from(v4mapped(1), 'hex').toString('base64'));
  t.end();
});

t.test('map entries are written in key order (as Go does)', (t) => {
  const enc = new ControlplaneEncoder();
  const a = enc.object('protobuf', 'NetworkPolicy', { ...policy, metadata: { name: 'x', labels: { b: '2', a: '1' } } });
  const b = enc.object('protobuf', 'NetworkPolicy', { ...policy, metadata: { name: 'x', labels: { a: '1', b: '2' } } });
  t.equal(hex(a), hex(b));
  t.end();
});

t.test('a watch stream decodes across arbitrary chunk boundaries', (t) => {
  const enc = new ControlplaneEncoder();
  for (const encoding of ['protobuf', 'json'] as const) {
    const frames = [
      enc.watchFrame(encoding, 'ADDED', 'NetworkPolicy', policy),
      enc.watchFrame(encoding, 'BOOKMARK', 'NetworkPolicy', {
        metadata: { name: '', resourceVersion: '9', annotations: { 'k8s.io/initial-events-end': 'true' } },
        rules: [],
        appliedToGroups: [],
      }),
      enc.watchFrame(encoding, 'DELETED', 'NetworkPolicy', {
        metadata: { name: 'uid-1' },
        rules: [],
        appliedToGroups: [],
      }),
      enc.errorFrame(encoding, { status: 'Failure', message: 'too slow', reason: 'Expired', code: 410 }),
    ];
    const all = Buffer.concat(frames);
    const whole = new WatchDecoder(encoding).push(all);
    for (const step of [1, 3, 7, 64]) {
      const d = new WatchDecoder(encoding);
      const got: DecodedWatchEvent[] = [];
      for (let i = 0; i < all.length; i += step) got.push(...d.push(all.subarray(i, i + step)));
      t.same(got, whole, `${encoding}, chunks of ${step}`);
    }
    t.same(
      whole.map((e) => e.type),
      ['ADDED', 'BOOKMARK', 'DELETED', 'ERROR'],
    );
    t.same(whole[0]?.object, policy);
    t.same(whole[3]?.object, { status: 'Failure', message: 'too slow', reason: 'Expired', code: 410 });
  }
  t.end();
});

function rejects(t: Test, fn: () => unknown, code: string, pattern: RegExp, msg: string): void {
  try {
    fn();
    t.fail(`${msg}: no error`);
  } catch (err) {
    t.ok(isAntreaError(err, code), `${msg}: typed ${code} (${(err as Error).message})`);
    t.match((err as Error).message, pattern, msg);
  }
}

t.test('malformed protobuf is rejected with typed errors', (t) => {
  const enc = new ControlplaneEncoder();
  const good = enc.object('protobuf', 'NetworkPolicy', policy);
  const P = 'PROTOBUF_MALFORMED';
  rejects(
    t,
    () => decodeObject('protobuf', good.subarray(0, good.length - 3)),
    P,
    /past the end|truncated/,
    'truncated object',
  );
  rejects(t, () => decodeObject('protobuf', Buffer.from('not protobuf')), P, /magic/, 'no envelope');
  rejects(
    t,
    () => decodeObject('protobuf', good, ['AddressGroup']),
    P,
    /unexpected kind "NetworkPolicy"/,
    'unexpected kind',
  );
  // GroupMember.ips with 5 bytes.
  rejects(
    t,
    () => decode(GroupMemberMsg, Buffer.from('1a050102030405', 'hex')),
    P,
    /ips: an IP address has 4 or 16 bytes/,
    'bad IP length',
  );
  // NetworkPolicyRule.direction "Up".
  rejects(
    t,
    () => decode(NetworkPolicyRuleMsg, Buffer.from('0a025570', 'hex')),
    P,
    /direction: "Up" is not one of In, Out/,
    'unknown enum',
  );
  // direction with a varint wire type.
  rejects(
    t,
    () => decode(NetworkPolicyRuleMsg, Buffer.from('0801', 'hex')),
    P,
    /direction: wire type 0, expected 2/,
    'wrong wire type',
  );
  // Invalid UTF-8 in a string.
  rejects(
    t,
    () => decode(NetworkPolicyRuleMsg, Buffer.from('4a02c328', 'hex')),
    P,
    /name: string is not valid UTF-8/,
    'invalid UTF-8',
  );
  // Varint running off the end, and an 11-byte varint.
  rejects(
    t,
    () => decode(NetworkPolicyRuleMsg, Buffer.from('28ffff', 'hex')),
    P,
    /truncated varint/,
    'truncated varint',
  );
  rejects(
    t,
    () => decode(NetworkPolicyRuleMsg, Buffer.from('28ffffffffffffffffffff01', 'hex')),
    P,
    /longer than 10 bytes/,
    'long varint',
  );
  // Wire types 3/4 (groups) are not supported.
  rejects(
    t,
    () => decode(NetworkPolicyRuleMsg, Buffer.from('fb01', 'hex')),
    P,
    /unsupported wire type 3/,
    'group wire type',
  );
  // Unknown event type and oversized frames.
  const frame = enc.watchFrame('protobuf', 'ADDED', 'NetworkPolicy', policy);
  const bad = Buffer.from(frame);
  bad.write('ADDEX', 6, 'latin1');
  rejects(t, () => new WatchDecoder('protobuf').push(bad), P, /unknown watch event type "ADDEX"/, 'unknown event type');
  rejects(
    t,
    () => new WatchDecoder('protobuf', { maxFrameBytes: 100 }).push(frame),
    P,
    /exceeds the limit of 100/,
    'oversized frame',
  );
  rejects(
    t,
    () => new WatchDecoder('protobuf', { expectedKinds: ['AddressGroup'] }).push(frame),
    P,
    /unexpected kind "NetworkPolicy"/,
    'event of the wrong kind',
  );
  t.end();
});

t.test('malformed JSON is rejected with typed errors', (t) => {
  const J = 'JSON_MALFORMED';
  rejects(t, () => new WatchDecoder('json').push(Buffer.from('{"type":"ADDED",\n')), J, /not JSON/, 'broken JSON');
  rejects(
    t,
    () => new WatchDecoder('json').push(Buffer.from('{"type":"NOPE","object":{}}\n')),
    J,
    /unknown watch event type "NOPE"/,
    'unknown type',
  );
  const line = (o: unknown): Buffer => Buffer.from(JSON.stringify({ type: 'ADDED', object: o }) + '\n');
  const base = { kind: 'AddressGroup', apiVersion: 'controlplane.antrea.io/v1beta2', metadata: { name: 'g' } };
  rejects(
    t,
    () => new WatchDecoder('json').push(line({ ...base, groupMembers: {} })),
    J,
    /groupMembers: expected an array/,
    'not an array',
  );
  rejects(
    t,
    () => new WatchDecoder('json').push(line({ ...base, groupMembers: [{ ips: ['10.0.0.1'] }] })),
    J,
    /groupMembers\[0\]\.ips\[0\]: expected base64 bytes/,
    'IP as text',
  );
  rejects(
    t,
    () => new WatchDecoder('json').push(line({ ...base, kind: 'Pod' })),
    J,
    /unexpected kind "Pod"/,
    'unknown kind',
  );
  rejects(
    t,
    () => new WatchDecoder('json').push(line({ ...base, apiVersion: 'v1' })),
    J,
    /apiVersion "v1"/,
    'wrong apiVersion',
  );
  rejects(
    t,
    () => new WatchDecoder('json', { maxFrameBytes: 10 }).push(Buffer.from('{"type":"ADDED"')),
    J.replace('JSON', 'PROTOBUF'),
    /exceeds/,
    'line too long',
  );
  t.end();
});

t.test('unknown fields are skipped; packed repeated scalars are accepted', (t) => {
  // PodReference with an unknown field 9 (string) between known ones.
  const member = decode(
    GroupMemberMsg,
    Buffer.from(bytes('0a0a', '0a01', ascii('a'), '4a01', ascii('z'), '1202', ascii('ns')), 'hex'),
  );
  t.same(member, { pod: { name: 'a', namespace: 'ns' } });
  // NetworkPolicyPeer.labelIdentities (5) packed: 2a 03 01 02 03.
  const rule = decode(NetworkPolicyRuleMsg, Buffer.from('12052a03010203', 'hex')) as {
    from: { labelIdentities: number[] };
  };
  t.same(rule.from.labelIdentities, [1, 2, 3]);
  t.end();
});

t.test('JSON mapping helpers are exact inverses on the field tables', (t) => {
  const m = { pod: { name: 'a', namespace: 'b' }, ips: ['fe80::1'], ports: [{ port: 1, name: 'p', protocol: 'UDP' }] };
  t.same(fromJSON(GroupMemberMsg, JSON.parse(JSON.stringify(toJSON(GroupMemberMsg, m)))), m);
  t.end();
});

t.test('envelope: an unsupported content encoding is refused', (t) => {
  const enc = new ControlplaneEncoder();
  const good = enc.object('protobuf', 'AddressGroup', { metadata: { name: 'g' }, groupMembers: [] });
  // Replace the trailing "1a00 2200" with "1a01 67 2200".
  const bad = Buffer.concat([good.subarray(0, good.length - 4), Buffer.from('1a01672200', 'hex')]);
  rejects(t, () => readEnvelope(bad), 'PROTOBUF_MALFORMED', /contentEncoding "g"/, 'content encoding');
  t.end();
});

t.test('frame reader keeps partial frames and counts pending bytes', (t) => {
  const r = new WatchFrameReader();
  t.same(r.push(Buffer.from('000000', 'hex')), []);
  t.equal(r.pending, 3);
  t.same(r.push(Buffer.from('0201', 'hex')), []);
  const frames = r.push(Buffer.from('0200000000', 'hex'));
  t.same(frames.map(hex), ['0102', '']);
  t.equal(r.pending, 0);
  t.end();
});
