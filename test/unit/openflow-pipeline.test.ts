import t from 'tap';
import { readFileSync } from 'node:fs';
import { formattedPipelineDoc, PIPELINE_DOC } from '../../scripts/gen-ovs-pipeline-doc.ts';
import { LearnBuilder, Nat, actions, parseIpNet } from '../../src/common/agent/openflow/builder.ts';
import { COOKIE_ROUND_MASK, CookieAllocator, decodeCookie } from '../../src/common/agent/openflow/cookie.ts';
import { type Feature, RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import {
  EndpointIP6Field,
  FromGatewayRegMark,
  FromPodRegMark,
  PktSourceField,
  PRIORITY,
  ServiceCTMark,
} from '../../src/common/agent/openflow/fields.ts';
import { CATALOG, T, TableCatalog } from '../../src/common/agent/openflow/pipeline.ts';
import { OfStore } from '../../src/common/agent/openflow/store.ts';
import { parseFlow } from '../../src/common/ovs/openflow/flow.ts';
import { parseGroup } from '../../src/common/ovs/openflow/group.ts';
import { parseMeter } from '../../src/common/ovs/openflow/meter.ts';
import {
  DEFAULT_TABLES,
  SAMPLE_FLOW_TEXTS,
  sampleFeature,
  sampleFlows,
  sampleGroups,
} from '../helpers/sample-pipeline.ts';

const cookies = new CookieAllocator(1);
const feature = (name: string, tables: Feature['requiredTables']): Feature => ({
  name,
  category: 'Default',
  requiredTables: tables,
});

t.test('cookies: round | category | object id', (t) => {
  t.equal(cookies.request('Default'), 0x1000000000000n, 'round 1 default-flow cookie (facts §1.5)');
  t.equal(new CookieAllocator(2).request('Service', 10), 0x203000000000an, 'round 2 Service object 10 (facts §1.5)');
  t.same(decodeCookie(0x203000000000an), { round: 2, category: 3, objectId: 10 });
  t.same(cookies.roundFilter, { cookie: 0x1000000000000n, cookieMask: COOKIE_ROUND_MASK });
  t.equal(CookieAllocator.nextRound(undefined), 1);
  t.equal(CookieAllocator.nextRound(7), 8);
  t.equal(CookieAllocator.nextRound(0xffff), 1, 'wraps, skipping 0');
  t.throws(() => new CookieAllocator(0x10000), { code: 'INVALID_ARGUMENT', field: 'round' }, 'round is 16 bits');
  t.throws(
    () => cookies.request('Service', -1),
    { code: 'INVALID_ARGUMENT', field: 'objectId' },
    'object id is 32 bits',
  );
  t.end();
});

t.test('the catalog keeps declaration order and stage order', (t) => {
  t.equal(CATALOG.tables[0]?.name, 'PipelineRootClassifier');
  t.ok(CATALOG.get('Output').order > CATALOG.get('Classifier').order);
  const c = new TableCatalog();
  c.declare('A', 'classifier', 'ip', 'a');
  t.throws(() => c.declare('A', 'output', 'ip', 'again'), { code: 'INVALID_ARGUMENT', field: 'name' }, 'no duplicates');
  c.declare('B', 'output', 'ip', 'b');
  t.throws(
    () => c.declare('C', 'routing', 'ip', 'c'),
    { code: 'INVALID_ARGUMENT', field: 'stage' },
    'a table cannot go back to an earlier stage',
  );
  t.throws(() => c.get('Nope'), { code: 'INVALID_ARGUMENT', field: 'table' });
  t.throws(() => c.declare('bad name', 'output', 'ip', 'x'), { code: 'INVALID_ARGUMENT', field: 'name' });
  t.end();
});

t.test('table ids are dense, per active features, in pipeline then declaration order', (t) => {
  const p = new RealizedPipeline([feature('All', () => DEFAULT_TABLES)]);
  t.same(
    p.tables.map((x) => `${x.id}:${x.name}`),
    [
      'PipelineRootClassifier',
      'ARPSpoofGuard',
      'ARPResponder',
      'Classifier',
      'SpoofGuard',
      'UnSNAT',
      'ConntrackZone',
      'ConntrackState',
      'PreRoutingClassifier',
      'SessionAffinity',
      'ServiceLB',
      'EndpointDNAT',
      'AntreaPolicyEgressRule',
      'EgressRule',
      'EgressDefaultRule',
      'EgressMetric',
      'L3Forwarding',
      'EgressMark',
      'L3DecTTL',
      'SNATMark',
      'SNAT',
      'L2ForwardingCalc',
      'IngressSecurityClassifier',
      'AntreaPolicyIngressRule',
      'IngressRule',
      'IngressDefaultRule',
      'IngressMetric',
      'ConntrackCommit',
      'Output',
    ].map((n, i) => `${i}:${n}`),
    'the default Linux numbering of facts §1.2 (0..28)',
  );
  // Enabling a feature that needs NodePortMark shifts every later table.
  const more = new RealizedPipeline([
    feature('All', () => DEFAULT_TABLES),
    feature('ProxyAll', () => [T.NodePortMark]),
  ]);
  t.equal(more.table(T.NodePortMark).id, 9, 'after PreRoutingClassifier (facts §1.2 note)');
  t.equal(more.table(T.Output).id, 29);
  t.equal(p.table(T.Classifier).next?.name, 'SpoofGuard');
  t.equal(p.table(T.Output).next, undefined, 'the last table has no next');
  t.equal(p.table(T.ARPResponder).missAction, 'drop', 'the last table of a pipeline drops');
  t.equal(p.table(T.Classifier).missAction, 'drop', 'declared drop');
  t.equal(p.table(T.UnSNAT).missAction, 'next');
  t.equal(p.table(T.ConntrackState).stageTable('preRouting')?.name, 'PreRoutingClassifier');
  t.equal(p.table(T.ConntrackState).stageTable('egressSecurity')?.name, 'AntreaPolicyEgressRule');
  t.equal(p.table(T.Output).stageTable('classifier'), undefined, 'stages only go forward');
  t.throws(
    () => p.table(T.NodePortMark),
    { code: 'INVALID_ARGUMENT', field: 'table' },
    'a table no feature needs is not in the pipeline',
  );
  t.same(p.tableNames()[3], { tableId: 3, name: 'Classifier' });
  t.throws(() => new RealizedPipeline([feature('X', () => []), feature('X', () => [])]), {
    code: 'INVALID_ARGUMENT',
    field: 'features',
  });
  t.end();
});

t.test('default flows: a miss flow per table and the root classifier', (t) => {
  const p = new RealizedPipeline([
    feature('Small', () => [T.ARPSpoofGuard, T.ARPResponder, T.Classifier, T.UnSNAT, T.Output]),
  ]);
  t.same(p.defaultFlows(cookies).map(String), [
    'cookie=0x1000000000000, priority=0 actions=drop',
    'cookie=0x1000000000000, table=1, priority=0 actions=drop',
    'cookie=0x1000000000000, table=2, priority=0 actions=drop',
    'cookie=0x1000000000000, table=3, priority=0 actions=drop',
    'cookie=0x1000000000000, table=4, priority=0 actions=goto_table:5',
    'cookie=0x1000000000000, table=5, priority=0 actions=drop',
    'cookie=0x1000000000000, priority=200,ip actions=goto_table:3',
    'cookie=0x1000000000000, priority=200,ipv6 actions=goto_table:3',
    'cookie=0x1000000000000, priority=200,arp actions=goto_table:1',
  ]);
  t.end();
});

t.test('the builders reproduce Antrea representative flows (facts §1.6-§1.14)', (t) => {
  const p = new RealizedPipeline([sampleFeature(cookies)]);
  const flows = sampleFlows(p, cookies);
  t.equal(flows.length, SAMPLE_FLOW_TEXTS.length);
  flows.forEach((f, i) => t.equal(f.toString(), SAMPLE_FLOW_TEXTS[i], `flow ${i}`));
  for (const text of SAMPLE_FLOW_TEXTS) t.equal(parseFlow(text).toString(), text, 'canonical text parses back');
  t.equal(
    sampleGroups()[0]?.toString(),
    'group_id=10,type=select,bucket=bucket_id:0,weight:100,actions=set_field:0xa0a0018->reg3,set_field:0x50/0xffff->reg4,resubmit(,11),bucket=bucket_id:1,weight:100,actions=set_field:0xa0a0019->reg3,set_field:0x50/0xffff->reg4,resubmit(,11)',
  );
  t.end();
});

t.test('builders are immutable and validate', (t) => {
  const p = new RealizedPipeline([sampleFeature(cookies)]);
  const base = p.table(T.Classifier).flow(PRIORITY.normal).matchProtocol('ip');
  const a = base.matchInPort(1).loadRegMark(FromPodRegMark).next();
  const b = base.matchInPort(2).loadRegMark(FromGatewayRegMark).next();
  t.equal(a.toString(), 'table=3, priority=200,ip,in_port=1 actions=set_field:0x3/0xf->reg0,goto_table:4');
  t.equal(b.toString(), 'table=3, priority=200,ip,in_port=2 actions=set_field:0x2/0xf->reg0,goto_table:4');
  t.equal(base.done().toString(), 'table=3, priority=200,ip actions=drop', 'the shared base is unchanged');
  const out = p.table(T.Output);
  t.throws(
    () => out.flow(1).matchDstPort(80).done(),
    { code: 'INVALID_ARGUMENT', field: 'tp_dst' },
    'a port needs a protocol',
  );
  t.throws(
    () => out.flow(1).matchField(PktSourceField, 16).done(),
    { code: 'INVALID_ARGUMENT', field: 'PktSourceField' },
    'value wider than the field',
  );
  t.throws(
    () => out.flow(1).gotoTable(p.table(T.Classifier)),
    { code: 'INVALID_ARGUMENT', field: 'actions' },
    'goto_table only goes forward',
  );
  t.throws(() => out.flow(1).gotoStage('classifier'), { code: 'INVALID_ARGUMENT', field: 'stage' });
  t.throws(() => out.flow(1).matchIPDSCP(64).done(), { code: 'INVALID_ARGUMENT', field: 'ip_dscp' });
  t.throws(
    () => out.flow(1).ct({ exec: [ServiceCTMark] }),
    { code: 'INVALID_ARGUMENT', field: 'ct.exec' },
    'exec needs commit',
  );
  t.throws(
    () => out.flow(1).ct({ nat: Nat.dst('10.0.0.1') }),
    { code: 'INVALID_ARGUMENT', field: 'ct.nat' },
    'nat(dst=...) needs commit',
  );
  t.throws(() => out.flow(1).conjunction(1, 3, 2), { code: 'INVALID_ARGUMENT', field: 'conjunction' });
  t.throws(
    () => out.flow(1).setField('ct_state', 1),
    { code: 'INVALID_ARGUMENT', field: 'set_field' },
    'read-only field',
  );
  t.throws(() => LearnBuilder.for(1, 1).done(), { code: 'INVALID_ARGUMENT', field: 'learn' });
  t.throws(() => parseIpNet('10.0.0.0/33'), { code: 'INVALID_ARGUMENT', field: 'ip' });
  // 128-bit register fields split into the 32-bit registers OVS shows
  const v6 = out.flow(1).matchField(EndpointIP6Field, 0xfd000000000000000000000000000001n).done();
  t.equal(v6.toString(), 'table=28, priority=1,reg12=0xfd000000,reg13=0,reg14=0,reg15=0x1 actions=drop');
  t.equal(
    out
      .flow(1)
      .action(...actions().pushVLAN(10).popVLAN().decTTL().actions)
      .done()
      .toString(),
    'table=28, priority=1 actions=push_vlan:0x8100,set_field:4106->vlan_vid,pop_vlan,dec_ttl',
  );
  t.end();
});

t.test('the store plans adds, modifications and deletes, and records only on commit', (t) => {
  const s = new OfStore();
  const f1 = parseFlow('cookie=0x1, table=1, priority=10,ip actions=drop');
  const f1b = parseFlow('cookie=0x1, table=1, priority=10,ip actions=output:1');
  const f1c = parseFlow('cookie=0x2, table=1, priority=10,ip actions=output:1');
  const f2 = parseFlow('cookie=0x1, table=2, priority=10,ip actions=drop');
  const kinds = (plan: { ops: readonly { kind: string; command?: string }[] }): string[] =>
    plan.ops.map((o) => `${o.kind}:${o.command ?? ''}`);

  const p1 = s.plan((b) => b.addFlows('pod-a', [f1, f2]));
  t.same(kinds(p1), ['flow:add', 'flow:add']);
  t.equal(s.flowCount, 0, 'nothing recorded before commit');
  p1.commit();
  t.equal(s.flowCount, 2);
  t.same(kinds(s.plan((b) => b.addFlows('pod-a', [f1]))), [], 'identical flows are skipped');
  t.same(
    kinds(s.plan((b) => b.replaceFlows('pod-a', [f1b]))),
    ['flow:delete_strict', 'flow:modify_strict'],
    'modify keeps the cookie',
  );
  t.same(
    kinds(s.plan((b) => b.replaceFlows('pod-a', [f1c, f2]))),
    ['flow:add'],
    'a new cookie replaces the flow with an add',
  );
  t.throws(
    () => s.plan((b) => b.addFlows('pod-b', [f1b])),
    { code: 'INVALID_ARGUMENT', field: 'flows' },
    'a flow belongs to one cache key',
  );
  t.throws(
    () => s.plan((b) => b.addFlows('pod-c', [f2, f2])),
    { code: 'INVALID_ARGUMENT', field: 'flows' },
    'duplicate flows in one request',
  );
  const del = s.plan((b) => b.deleteFlows('pod-a'));
  t.same(kinds(del), ['flow:delete_strict', 'flow:delete_strict']);
  del.commit();
  t.equal(s.flowCount, 0);
  t.same(s.cacheKeys(), []);

  const g = parseGroup('group_id=3,type=all,bucket=actions=drop');
  const g2 = parseGroup('group_id=3,type=all,bucket=actions=output:1');
  const m = parseMeter('meter=5 pktps bands=type=drop rate=10');
  const plan = s.plan((b) => {
    b.setGroup(g);
    b.setMeter(m);
    b.addFlows('x', [parseFlow('table=1, priority=1 actions=group:3')]);
  });
  t.same(kinds(plan), ['group:add', 'flow:add'], 'groups are added before the flows that use them');
  t.same(
    plan.before.map((o) => o.kind),
    ['meter'],
    'meters go before the bundle',
  );
  plan.commit();
  t.same(kinds(s.plan((b) => b.setGroup(g2))), ['group:modify']);
  const rm = s.plan((b) => {
    b.deleteGroup(3);
    b.deleteFlows('x');
    b.deleteMeter(5);
  });
  t.same(kinds(rm), ['flow:delete_strict', 'group_delete:'], 'groups are deleted after their flows');
  t.same(
    rm.after.map((o) => o.kind),
    ['meter_delete'],
    'meters are deleted after the bundle',
  );
  t.end();
});

t.test('docs/design/ovs-pipeline.md is generated from the catalog', async (t) => {
  const want = await formattedPipelineDoc();
  t.equal(readFileSync(PIPELINE_DOC, 'utf8'), want, 'run `node scripts/gen-ovs-pipeline-doc.ts` after changing tables');
  for (const table of CATALOG.tables) t.match(want, `\`${table.name}\``, `documents ${table.name}`);
});
