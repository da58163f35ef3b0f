/**
 * The native OpenFlow 1.5 client against a real ovs-vswitchd (userspace datapath) in a private
 * namespace: every match and action installed by us and read back with ovs-ofctl (the oracle),
 * atomic bundles, flow-mod semantics, multipart stats, packet-in (userdata, metadata,
 * pause/resume), PACKET_OUT onto a veth seen by tcpdump in another namespace, table names, TLV maps
 * and handshake errors.
 */
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpenFlowConnection } from '../../src/common/ovs/openflow/connection.ts';
import { OFPP } from '../../src/common/ovs/openflow/consts.ts';
import { isOpenFlowError } from '../../src/common/ovs/openflow/errors.ts';
import { parseFlow } from '../../src/common/ovs/openflow/flow.ts';
import { parseGroup } from '../../src/common/ovs/openflow/group.ts';
import { parseMeter } from '../../src/common/ovs/openflow/meter.ts';
import type { PacketIn } from '../../src/common/ovs/openflow/messages.ts';
import {
  addTlvMappings,
  apply,
  applyBundle,
  clearAll,
  dumpFlows,
  dumpGroups,
  dumpMeters,
  groupStats,
  op,
  portDescs,
  portStats,
  setTableNames,
  tableNames,
} from '../../src/common/ovs/openflow/ops.ts';
import { buildUdpPacket, parsePacket } from '../../src/common/ovs/openflow/packet.ts';
import {
  integrationSkipReason,
  launcher,
  runner,
  shortTempDir,
  tempNetns,
  tempOvs,
  uniqueName,
} from '../helpers/env.ts';
import { FLOW_CASES, GROUP_CASES, METER_CASES } from '../helpers/openflow-cases.ts';
import {
  addBridge,
  dumpFlowLines,
  dumpGroupLines,
  dumpMeterTexts,
  ofctl,
  ofport,
  vsctl,
} from '../helpers/ovs-bridge.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

/** Connects and removes the bridge's default NORMAL flow, so tests see only their own flows. */
async function connect(t: Test, endpoint: string): Promise<OpenFlowConnection> {
  const conn = await OpenFlowConnection.connect({ endpoint });
  t.teardown(() => conn.close());
  await clearAll(conn);
  return conn;
}

const udp = (payload: string, dstPort = 9999): Uint8Array =>
  buildUdpPacket({
    srcMac: '02:00:00:00:00:01',
    dstMac: '02:00:00:00:00:02',
    srcIp: '10.0.0.1',
    dstIp: '10.0.0.2',
    srcPort: 12345,
    dstPort,
    payload: new TextEncoder().encode(payload),
  });

t.test('every match field and action is installed natively and reads back as ovs-ofctl prints it', async (t) => {
  const ovs = await tempOvs(t);
  const ep = await addBridge(ovs, 'br-of');
  const conn = await connect(t, ep);
  await addTlvMappings(conn, [{ optClass: 0xffff, optType: 0, optLen: 4, index: 0 }]);

  const meters = METER_CASES.map(([input]) => parseMeter(input));
  await apply(conn, meters.map(op.addMeter));
  t.same(
    await dumpMeterTexts(ep),
    METER_CASES.map(([, c]) => c).sort(),
    'meters: ovs-ofctl dump-meters equals our text',
  );
  t.same((await dumpMeters(conn)).map(String).sort(), METER_CASES.map(([, c]) => c).sort(), 'meters decoded by us');

  const groups = GROUP_CASES.map(([input]) => parseGroup(input));
  await apply(conn, groups.map(op.addGroup));
  t.same(
    await dumpGroupLines(ep),
    GROUP_CASES.map(([, c]) => c).sort(),
    'groups: ovs-ofctl dump-groups equals our text',
  );
  t.same((await dumpGroups(conn)).map(String).sort(), GROUP_CASES.map(([, c]) => c).sort(), 'groups decoded by us');

  for (const [input, canonical] of FLOW_CASES) {
    const flow = parseFlow(input);
    t.equal(flow.toString(), canonical, `rendered: ${input}`);
    await apply(conn, [op.addFlow(flow)]);
  }
  const expected = FLOW_CASES.map(([, c]) => c).sort();
  const dumped = await dumpFlowLines(ep);
  t.same(dumped, expected, 'flows: ovs-ofctl dump-flows equals our canonical text, field order and all');
  for (const line of dumped) t.equal(parseFlow(line).toString(), line, `parses back: ${line}`);
  t.same(
    (await dumpFlows(conn)).map((s) => s.flow.toString()).sort(),
    expected,
    'flows decoded from our own multipart flow-desc reply',
  );
});

t.test('a bundle with one invalid flow changes nothing, and the error names that flow', async (t) => {
  const ovs = await tempOvs(t);
  const ep = await addBridge(ovs, 'br-bd');
  const conn = await connect(t, ep);
  const before = parseFlow('table=0,priority=10,ip actions=drop');
  await apply(conn, [op.addFlow(before)]);
  const snapshot = await dumpFlowLines(ep);

  const changed = parseFlow('table=0,priority=10,ip actions=output:1');
  const good = [0, 1, 2].map((i) => parseFlow(`table=${i + 1},priority=100,tcp,tp_dst=${80 + i} actions=drop`));
  // Fails when the bundle is committed: meter 999 does not exist.
  const badAtCommit = parseFlow('table=5,priority=5,ip actions=meter:999,goto_table:6');
  const err1 = await applyBundle(conn, [
    op.modifyFlow(changed),
    op.addFlow(good[0]!),
    op.addFlow(badAtCommit),
    op.addFlow(good[1]!),
  ]).catch((e: unknown) => e);
  t.ok(isOpenFlowError(err1, 'OFPMMFC_INVALID_METER'), `commit-time failure is typed: ${String(err1)}`);
  if (isOpenFlowError(err1)) {
    t.equal(err1.info?.request?.text, badAtCommit.toString(), 'the error carries the failing flow in canonical text');
    t.equal(err1.info?.request?.index, 2, 'and its position in the bundle');
    t.match(err1.message, /table=5, priority=5,ip actions=meter:999,goto_table:6/);
  }
  t.same(await dumpFlowLines(ep), snapshot, 'nothing changed (not even the modified flow)');

  // Fails when the message is added: output to a group that does not exist.
  const badAtAdd = parseFlow('table=6,priority=5,ip actions=group:777');
  const err2 = await applyBundle(conn, [op.addFlow(good[2]!), op.addFlow(badAtAdd)]).catch((e: unknown) => e);
  t.ok(isOpenFlowError(err2, 'OFPBAC_BAD_OUT_GROUP'), `add-time failure is typed: ${String(err2)}`);
  if (isOpenFlowError(err2)) t.equal(err2.info?.request?.text, badAtAdd.toString());
  t.same(await dumpFlowLines(ep), snapshot, 'still nothing changed');

  await applyBundle(conn, [op.modifyFlow(changed), ...good.map(op.addFlow)]);
  t.same(
    await dumpFlowLines(ep),
    [changed.toString(), ...good.map(String)].sort(),
    'a valid bundle applies everything across tables',
  );
});

t.test('flow-mod commands: modify, strict and non-strict delete, cookie masks, out_port, flags', async (t) => {
  const ovs = await tempOvs(t);
  const ep = await addBridge(ovs, 'br-fm');
  const conn = await connect(t, ep);
  const flows = [
    'cookie=0x1000000000001, table=2, priority=100,ip actions=output:1',
    'cookie=0x1000000000002, table=2, priority=101,ip,nw_src=10.0.0.1 actions=output:2',
    'cookie=0x2000000000003, table=3, priority=100,tcp actions=output:1',
    'cookie=0x2000000000004, table=3, send_flow_rem priority=90,udp actions=drop',
  ].map(parseFlow);
  await apply(conn, flows.map(op.addFlow));
  t.same(await dumpFlowLines(ep), flows.map(String).sort(), 'flags and cookies as printed by ovs-ofctl');

  // modify_strict changes the actions but keeps the cookie (OpenFlow 1.5 semantics).
  await apply(conn, [op.modifyFlow(parseFlow('cookie=0x9, table=2, priority=100,ip actions=output:3'))]);
  t.ok((await dumpFlowLines(ep)).includes('cookie=0x1000000000001, table=2, priority=100,ip actions=output:3'));

  // non-strict modify: every flow of table 2 covered by "ip" (both priorities) gets the new actions
  await apply(conn, [op.modifyFlows(parseFlow('table=2, ip actions=output:7'))]);
  t.same(
    (await dumpFlowLines(ep)).filter((l) => l.includes('table=2')),
    [
      'cookie=0x1000000000001, table=2, priority=100,ip actions=output:7',
      'cookie=0x1000000000002, table=2, priority=101,ip,nw_src=10.0.0.1 actions=output:7',
    ],
    'non-strict modify covers more specific matches and keeps cookies',
  );

  // non-strict delete by cookie under a mask: the round bits 0x1000000000000
  await apply(conn, [op.deleteFlows({ cookie: 0x1000000000000n, cookieMask: 0xffff000000000000n })]);
  t.same(await dumpFlowLines(ep), flows.slice(2).map(String).sort(), 'only the flows of that cookie round are gone');

  // delete by out_port (flows that output to port 1)
  await apply(conn, [op.deleteFlows({ outPort: 1 })]);
  t.same(await dumpFlowLines(ep), [flows[3]!.toString()], 'out_port selects the flows that output there');

  // strict delete of a missing flow is not an error; of the remaining flow removes it
  await apply(conn, [op.deleteFlow(flows[0]!), op.deleteFlow(flows[3]!)]);
  t.same(await dumpFlowLines(ep), []);
});

t.test('multipart flow, group and port stats count real packets', async (t) => {
  const ovs = await tempOvs(t);
  const ep = await addBridge(ovs, 'br-st');
  const conn = await connect(t, ep);
  await apply(conn, [
    op.addGroup(parseGroup('group_id=20,type=all,bucket=actions=drop')),
    op.addFlow(parseFlow('cookie=0x7, priority=100,udp,tp_dst=9999 actions=group:20')),
  ]);
  for (let i = 0; i < 3; i++)
    await conn.packetOut({
      inPort: OFPP.LOCAL,
      actions: [{ type: 'output', port: OFPP.TABLE, maxLen: 0 }],
      packet: udp(`p${i}`),
    });
  const stats = await dumpFlows(conn, { cookie: 0x7n, cookieMask: 0xffffffffffffffffn });
  t.equal(stats.length, 1, 'cookie filter selects one flow');
  t.equal(stats[0]?.packetCount, 3n, 'flow counted the three packets');
  t.ok((stats[0]?.byteCount ?? 0n) > 0n);
  t.match(stats[0]?.flow.toString(), /priority=100,udp,tp_dst=9999 actions=group:20/);
  const gs = await groupStats(conn, 20);
  t.equal(gs[0]?.packetCount, 3n, 'group counted the packets');
  t.equal(gs[0]?.refCount, 1, 'one flow refers to the group');
  const ports = await portStats(conn);
  t.ok(
    ports.some((p) => p.portNo === OFPP.LOCAL),
    'port stats include the bridge port',
  );
  const descs = await portDescs(conn);
  t.ok(
    descs.some((p) => p.name === 'br-st' && p.portNo === OFPP.LOCAL),
    'port descriptions give names',
  );
});

t.test('packet-in arrives decoded: userdata, reason, table, cookie, metadata; pause and resume', async (t) => {
  const ovs = await tempOvs(t);
  const ep = await addBridge(ovs, 'br-pi');
  const conn = await connect(t, ep);
  await apply(conn, [
    op.addFlow(parseFlow('cookie=0xabc, priority=100,udp,tp_dst=9999 actions=set_field:0x5->reg3,goto_table:4')),
    op.addFlow(parseFlow('table=4, priority=100,udp actions=controller(userdata=01.02.0a,max_len=200)')),
    op.addFlow(parseFlow('priority=100,udp,tp_dst=7777 actions=controller(pause,userdata=aa),controller(userdata=bb)')),
  ]);
  const received: PacketIn[] = [];
  let notify: () => void = () => undefined;
  conn.onPacketIn((pin) => {
    received.push(pin);
    notify();
  });
  const waitFor = async (n: number): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (received.length < n && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        notify = resolve;
        setTimeout(resolve, 100);
      });
    }
  };
  const pkt = udp('hello');
  await conn.packetOut({ inPort: OFPP.LOCAL, actions: [{ type: 'output', port: OFPP.TABLE, maxLen: 0 }], packet: pkt });
  await waitFor(1);
  const pin = received[0];
  t.ok(pin, 'a packet-in arrived');
  if (pin !== undefined) {
    t.same([...(pin.userdata ?? [])], [1, 2, 10], 'userdata');
    t.equal(pin.reason, 'action');
    t.equal(pin.tableId, 4);
    t.equal(pin.cookie, 0n, 'cookie of the flow that sent it (table 4 has none)');
    t.equal(pin.metadata.exact('reg3'), 5n, 'metadata carries the registers');
    t.equal(pin.metadata.exact('in_port'), BigInt(OFPP.LOCAL), 'and the ingress port');
    t.same([...pin.packet], [...pkt], 'the packet itself');
    t.equal(parsePacket(pin.packet).ipv4?.dstPort, 9999);
    t.equal(pin.continuation, undefined, 'not paused');
  }

  await conn.packetOut({
    inPort: OFPP.LOCAL,
    actions: [{ type: 'output', port: OFPP.TABLE, maxLen: 0 }],
    packet: udp('x', 7777),
  });
  await waitFor(2);
  const paused = received[1];
  t.ok(paused?.continuation, 'controller(pause) gives a continuation');
  t.same([...(paused?.userdata ?? [])], [0xaa]);
  t.equal(received.length, 2, 'the pipeline is paused: the second controller action has not run');
  if (paused !== undefined) await conn.resume(paused);
  await waitFor(3);
  t.same([...(received[2]?.userdata ?? [])], [0xbb], 'resume continued the pipeline after the pause');
});

t.test('PACKET_OUT reaches a veth in another namespace (seen by tcpdump there)', async (t) => {
  const ovs = await tempOvs(t);
  const ep = await addBridge(ovs, 'br-po');
  const podNs = await tempNetns(t, 'atspod-');
  const ovsNs = ovs.netns ?? '';
  const hostIf = uniqueName('vh');
  await runner.run('ip', ['-n', ovsNs, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', podNs]);
  await runner.run('ip', ['-n', ovsNs, 'link', 'set', hostIf, 'up']);
  await runner.run('ip', ['-n', podNs, 'link', 'set', 'eth0', 'up']);
  await vsctl(ovs, 'add-port', 'br-po', hostIf);
  const port = await ofport(ovs, hostIf);
  const conn = await connect(t, ep);

  const dir = shortTempDir(t, 'cap');
  const pcap = join(dir, 'cap.pcap');
  const log = join(dir, 'tcpdump.log');
  const tcpdump = await launcher.launch(
    'ip',
    ['netns', 'exec', podNs, 'tcpdump', '-i', 'eth0', '-n', '-U', '-c', '1', '-w', pcap, 'udp', 'and', 'port', '9999'],
    { logFile: log },
  );
  t.teardown(() => tcpdump.stop(1000));
  for (let i = 0; i < 100 && !(existsSync(log) && readFileSync(log, 'utf8').includes('listening on')); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const pkt = udp('from-the-controller');
  await conn.packetOut({ actions: [{ type: 'output', port, maxLen: 0 }], packet: pkt });
  const exit = await Promise.race([tcpdump.exited, new Promise((r) => setTimeout(() => r('timeout'), 5000))]);
  t.not(exit, 'timeout', 'tcpdump saw a packet');
  const captured = readPcap(readFileSync(pcap));
  t.equal(captured.length, 1, 'one packet captured in the pod namespace');
  t.same([...(captured[0] ?? [])], [...pkt], 'it is exactly the packet we sent');
});

t.test('table names are programmed through table features', async (t) => {
  const ovs = await tempOvs(t);
  const ep = await addBridge(ovs, 'br-tn');
  const conn = await connect(t, ep);
  await setTableNames(conn, [
    { tableId: 0, name: 'PipelineRootClassifier' },
    { tableId: 3, name: 'Classifier' },
  ]);
  await apply(conn, [op.addFlow(parseFlow('table=3,priority=10,ip actions=drop'))]);
  const out = await ofctl('--no-stats', 'dump-flows', ep, 'table=Classifier');
  t.match(out, /table=3, priority=10,ip actions=drop/, 'ovs-ofctl accepts the table name');
  const names = await tableNames(conn);
  t.same(
    names.filter((n) => n.name !== '').map((n) => [n.tableId, n.name]),
    [
      [0, 'PipelineRootClassifier'],
      [3, 'Classifier'],
    ],
  );
});

t.test('handshake and connection errors are typed and explain themselves', async (t) => {
  const ovs = await tempOvs(t);
  const ep = await addBridge(ovs, 'br-10', 'OpenFlow10');
  const err = await OpenFlowConnection.connect({ endpoint: ep }).catch((e: unknown) => e);
  t.match(err, { code: 'OPENFLOW_HANDSHAKE' });
  t.match(String(err), /OpenFlow15/, 'says what to fix');
  const err2 = await OpenFlowConnection.connect({ endpoint: `unix:${ovs.runDir}/missing.mgmt` }).catch(
    (e: unknown) => e,
  );
  t.match(err2, { code: 'OPENFLOW_DISCONNECTED' });
  const err3 = await OpenFlowConnection.connect({ endpoint: 'nonsense' }).catch((e: unknown) => e);
  t.match(err3, { code: 'INVALID_ARGUMENT', field: 'endpoint' });
});

/** Packets of a classic pcap file. */
function readPcap(b: Buffer): Uint8Array[] {
  const out: Uint8Array[] = [];
  const le = b.readUInt32LE(0) === 0xa1b2c3d4;
  let off = 24;
  while (off + 16 <= b.length) {
    const incl = le ? b.readUInt32LE(off + 8) : b.readUInt32BE(off + 8);
    out.push(new Uint8Array(b.subarray(off + 16, off + 16 + incl)));
    off += 16 + incl;
  }
  return out;
}
