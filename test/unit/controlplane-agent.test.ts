/**
 * The agent's on-disk snapshot (atomic write, every kind of damage reported as `corrupt`, never as
 * an empty set), the agent's object state (patches, inconsistent events) and antrea-controller.conf
 * parsing. The watcher itself is exercised end to end in test/integration/controlplane.test.ts.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ResourceState, SnapshotStore, StreamInconsistentError } from '../../src/common/agent/controlplane/index.ts';
import type { SnapshotObjects } from '../../src/common/agent/controlplane/index.ts';
import { ValidationError } from '../../src/common/util/errors.ts';
import { DEFAULT_CONTROLLER_CONFIG, parseControllerConfig } from '../../src/controller/config.ts';

const objects: SnapshotObjects = {
  networkpolicies: [
    {
      metadata: { name: 'uid-1', generation: 3 },
      rules: [
        {
          direction: 'In',
          from: { addressGroups: ['ag1'], ipBlocks: [] },
          to: { addressGroups: [], ipBlocks: [] },
          services: [],
          priority: -1,
        },
      ],
      appliedToGroups: ['atg1'],
      sourceRef: { type: 'K8sNetworkPolicy', namespace: 'ns1', name: 'p', uid: 'uid-1' },
    },
  ],
  addressgroups: [
    { metadata: { name: 'ag1' }, groupMembers: [{ pod: { name: 'a', namespace: 'ns1' }, ips: ['10.0.0.1'] }] },
  ],
  appliedtogroups: [{ metadata: { name: 'atg1' }, groupMembers: [{ pod: { name: 'b', namespace: 'ns1' } }] }],
};

t.test('a snapshot round-trips, is written atomically and cleans up after a crash', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'policy', 'snapshot');
  const store = new SnapshotStore({ path, nodeName: 'n1', now: () => Date.UTC(2026, 0, 1) });
  t.same(await store.load(), { status: 'absent' });
  await store.save(objects);
  await store.save(objects);
  const loaded = await new SnapshotStore({ path, nodeName: 'n1' }).load();
  t.equal(loaded.status, 'loaded');
  if (loaded.status !== 'loaded') return;
  t.equal(loaded.generation, 2);
  t.equal(loaded.savedAt, '2026-01-01T00:00:00.000Z');
  t.match(loaded.objects, objects);
  t.same(readdirSync(join(dir, 'policy')), ['snapshot'], 'no temporary file left');
  writeFileSync(`${path}.tmp-123-abcd`, 'half written');
  t.equal((await store.load()).status, 'loaded', 'a crash leftover does not matter');
  t.same(readdirSync(join(dir, 'policy')), ['snapshot'], 'and is removed');
});

t.test('every kind of damage is reported as corrupt, with the reason', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'snapshot');
  await new SnapshotStore({ path, nodeName: 'n1' }).save(objects);
  const good = readFileSync(path);
  const nl2 = good.indexOf(0x0a, good.indexOf(0x0a) + 1);
  const header = JSON.parse(good.subarray(good.indexOf(0x0a) + 1, nl2).toString()) as Record<string, unknown>;
  const withHeader = (h: Record<string, unknown>, payload = good.subarray(nl2 + 1)): Buffer =>
    Buffer.concat([good.subarray(0, good.indexOf(0x0a) + 1), Buffer.from(JSON.stringify(h) + '\n'), payload]);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 3] = (flipped[flipped.length - 3] ?? 0) ^ 0xff;
  const cases: [string, Buffer, RegExp][] = [
    ['empty file', Buffer.alloc(0), /bad magic/],
    ['another format', Buffer.from('{"networkpolicies":[]}\n'), /bad magic/],
    ['truncated', good.subarray(0, good.length - 10), /payload of \d+ bytes, the header announces \d+/],
    ['a flipped byte', flipped, /checksum mismatch/],
    [
      'header not JSON',
      Buffer.concat([good.subarray(0, good.indexOf(0x0a) + 1), Buffer.from('{nope\n')]),
      /header is not JSON/,
    ],
    ['another Node', withHeader({ ...header, node: 'n2' }), /belongs to Node "n2", not "n1"/],
    [
      'a missing section',
      withHeader(
        { ...header, sections: (header['sections'] as unknown[]).slice(0, 2), sha256: header['sha256'] },
        Buffer.alloc(0),
      ),
      /payload|missing/,
    ],
  ];
  for (const [what, data, re] of cases) {
    writeFileSync(path, data);
    const r = await new SnapshotStore({ path, nodeName: 'n1' }).load();
    t.equal(r.status, 'corrupt', what);
    if (r.status === 'corrupt') {
      t.match(r.error.message, re, what);
      t.equal(r.error.code, 'SNAPSHOT_CORRUPT');
    }
  }
});

t.test('the agent state applies patches and refuses events that do not fit', (t) => {
  const s = new ResourceState('addressgroups');
  s.replace([{ metadata: { name: 'ag' }, groupMembers: [{ pod: { name: 'a', namespace: 'ns' }, ips: ['10.0.0.1'] }] }]);
  s.apply({
    resource: 'addressgroups',
    type: 'MODIFIED',
    object: {
      metadata: { name: 'ag' },
      addedGroupMembers: [{ pod: { name: 'b', namespace: 'ns' }, ips: ['10.0.0.2'] }],
      removedGroupMembers: [{ pod: { name: 'a', namespace: 'ns' }, ips: ['10.0.0.1'] }],
    },
  });
  t.same(s.get('ag')?.groupMembers, [{ pod: { name: 'b', namespace: 'ns' }, ips: ['10.0.0.2'] }]);
  const patchUnknown = (): void =>
    s.apply({
      resource: 'addressgroups',
      type: 'MODIFIED',
      object: { metadata: { name: 'zz' }, addedGroupMembers: [], removedGroupMembers: [] },
    });
  t.throws(patchUnknown, StreamInconsistentError);
  t.throws(
    () => s.apply({ resource: 'addressgroups', type: 'ADDED', object: { metadata: { name: 'ag' }, groupMembers: [] } }),
    /ADDED for known addressgroups ag/,
  );
  t.throws(
    () =>
      s.apply({ resource: 'addressgroups', type: 'DELETED', object: { metadata: { name: 'zz' }, groupMembers: [] } }),
    /DELETED for unknown/,
  );
  t.end();
});

t.test('antrea-controller.conf: Antrea keys and defaults; bad values name the key', (t) => {
  t.same(parseControllerConfig(''), DEFAULT_CONTROLLER_CONFIG);
  const c = parseControllerConfig(
    'apiPort: 10350\nselfSignedCert: false\ntlsMinVersion: VersionTLS13\ntlsCipherSuites: "A, B"\nclientConnection:\n  kubeconfig: /k\nfeatureGates:\n  Egress: true\n',
  );
  t.match(c, {
    apiPort: 10350,
    selfSignedCert: false,
    tlsMinVersion: 'TLSv1.3',
    tlsCipherSuites: 'A:B',
    kubeconfig: '/k',
  });
  const bad: [string, RegExp][] = [
    ['apiPort: 70000', /^apiPort: must be a port number/],
    ['apiPort: "x"', /^apiPort: /],
    ['selfSignedCert: maybe', /^selfSignedCert: must be true or false/],
    ['tlsMinVersion: VersionTLS10', /^tlsMinVersion: VersionTLS10 is not supported/],
    ['tlsMinVersion: TLS9', /^tlsMinVersion: "TLS9" is not one of/],
    ['clientConnection: 3', /^clientConnection: must be a mapping/],
    ['- a list', /^config: must be a YAML mapping/],
    ['a: [', /^config: not valid YAML/],
  ];
  for (const [text, re] of bad) {
    t.throws(() => parseControllerConfig(text), ValidationError, text);
    t.throws(() => parseControllerConfig(text), re, text);
  }
  t.end();
});
