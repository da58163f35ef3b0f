/**
 * The reject replies for Services without Endpoints: a TCP RST|ACK from the Service address to the
 * client (acknowledging the SYN), an ICMP "administratively prohibited" quoting the packet for UDP,
 * valid checksums, nothing for a RST; and the packet-in handler's packet-out (to the in_port).
 * The real path (agent, OVS, a Pod's kernel seeing ECONNREFUSED) is in test/integration/proxy.test.ts.
 */
import t from 'tap';
import { buildReject, startServiceRejecter } from '../../src/common/agent/proxy/reject.ts';
import { buildUdpPacket, inetChecksum, parsePacket } from '../../src/common/ovs/openflow/packet.ts';
import type { PacketIn, PacketOut } from '../../src/common/ovs/openflow/messages.ts';
import { Match } from '../../src/common/ovs/openflow/match.ts';

function tcpSyn(flags = 0x02): Uint8Array {
  const f = new Uint8Array(14 + 20 + 20);
  const v = new DataView(f.buffer);
  f.set([2, 0, 0, 0, 0, 1], 0); // dst MAC (gateway)
  f.set([2, 0, 0, 0, 0, 5], 6); // src MAC (client)
  v.setUint16(12, 0x0800);
  f[14] = 0x45;
  v.setUint16(16, 40);
  f[22] = 64;
  f[23] = 6;
  f.set([10, 10, 1, 5], 26);
  f.set([10, 96, 0, 10], 30);
  v.setUint16(34, 40000);
  v.setUint16(36, 80);
  v.setUint32(38, 1000);
  f[46] = 5 << 4;
  f[47] = flags;
  return f;
}

t.test('TCP: RST|ACK from the Service to the client', (t) => {
  const reply = buildReject(tcpSyn());
  t.ok(reply !== undefined);
  const p = parsePacket(reply ?? new Uint8Array());
  t.equal(p.dstMac, '02:00:00:00:00:05');
  t.equal(p.srcMac, '02:00:00:00:00:01');
  t.same(
    [p.ipv4?.src, p.ipv4?.dst, p.ipv4?.proto, p.ipv4?.srcPort, p.ipv4?.dstPort],
    ['10.96.0.10', '10.10.1.5', 6, 80, 40000],
  );
  const b = reply ?? new Uint8Array();
  const v = new DataView(b.buffer, b.byteOffset);
  t.equal(b[47], 0x14, 'RST|ACK');
  t.equal(v.getUint32(42), 1001, 'acknowledges the SYN');
  t.equal(inetChecksum(b.subarray(14, 34)), 0, 'IP checksum');
  const pseudo = new Uint8Array([...b.subarray(26, 34), 0, 6, 0, 20]);
  const both = new Uint8Array([...pseudo, ...b.subarray(34, 54)]);
  t.equal(inetChecksum(both), 0, 'TCP checksum');
  t.equal(buildReject(tcpSyn(0x04)), undefined, 'never answers a RST');
  t.equal(buildReject(new Uint8Array(20)), undefined, 'truncated: nothing');
  t.end();
});

t.test('UDP: ICMP administratively prohibited quoting the packet', (t) => {
  const udp = buildUdpPacket({
    srcMac: '02:00:00:00:00:05',
    dstMac: '02:00:00:00:00:01',
    srcIp: '10.10.1.5',
    dstIp: '10.96.0.10',
    srcPort: 5353,
    dstPort: 53,
    payload: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]),
  });
  const reply = buildReject(udp) ?? new Uint8Array();
  const p = parsePacket(reply);
  t.same([p.ipv4?.src, p.ipv4?.dst, p.ipv4?.proto], ['10.96.0.10', '10.10.1.5', 1]);
  t.same([reply[34], reply[35]], [3, 10], 'type 3 code 10');
  t.equal(inetChecksum(reply.subarray(34)), 0, 'ICMP checksum');
  t.same(reply.subarray(42, 42 + 28), udp.subarray(14, 14 + 28), 'quotes the IP header and 8 bytes');
  t.end();
});

t.test('the handler answers category-4 packet-ins out of their in_port', async (t) => {
  const outs: PacketOut[] = [];
  let listener: ((p: PacketIn) => void) | undefined;
  const stop = startServiceRejecter({
    onPacketIn: (l) => {
      listener = l;
      return () => (listener = undefined);
    },
    packetOut: (po) => {
      outs.push(po);
      return Promise.resolve();
    },
  });
  const pin = (category: number): PacketIn => ({
    packet: tcpSyn(),
    fullLen: 54,
    bufferId: 0xffffffff,
    tableId: 12,
    cookie: 0n,
    reason: 'action',
    metadata: Match.EMPTY.with('in_port', 7n),
    userdata: new Uint8Array([category, 0]),
    rawProperties: new Uint8Array(),
  });
  listener?.(pin(1));
  t.equal(outs.length, 0, 'other categories are not ours');
  listener?.(pin(4));
  await Promise.resolve();
  t.equal(outs.length, 1);
  t.same(outs[0]?.actions, [{ type: 'output', port: 7, maxLen: 0 }]);
  stop();
  t.equal(listener, undefined, 'unsubscribed');
});
