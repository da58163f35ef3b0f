/**
 * Rejecting connections to a Service without Endpoints (Antrea's ProxyServer.HandlePacketIn,
 * facts §1.12): the datapath sends the first packet to the agent (packet-in, userdata category 4);
 * the agent answers the client with a TCP RST (for TCP) or an ICMP "destination unreachable, host
 * administratively prohibited" (type 3 code 10, for anything else), sent out of the port the
 * packet came in on, as if from the Service address.
 */
import { type Logger, nullLogger } from '../../util/log.ts';
import { errorMessage } from '../../util/errors.ts';
import type { PacketIn, PacketOut } from '../../ovs/openflow/messages.ts';
import { OFPP } from '../../ovs/openflow/consts.ts';
import { inetChecksum } from '../../ovs/openflow/packet.ts';
import { PACKET_IN_CATEGORY_SVC_REJECT } from '../openflow/service.ts';

export interface RejectSink {
  onPacketIn(listener: (pin: PacketIn) => void): () => void;
  packetOut(po: PacketOut): Promise<void>;
}

/**
 * The reply rejecting `frame` (an Ethernet/IPv4 packet), or undefined when it is not IPv4, is
 * itself a RST or an ICMP error, or is truncated.
 */
export function buildReject(frame: Uint8Array): Uint8Array | undefined {
  const byte = (i: number): number => frame[i] ?? 0;
  if (frame.length < 34) return undefined;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (view.getUint16(12) !== 0x0800) return undefined;
  const ihl = (byte(14) & 0x0f) * 4;
  if (ihl < 20 || frame.length < 14 + ihl) return undefined;
  const ip = frame.subarray(14, 14 + ihl);
  const totalLen = view.getUint16(16);
  const proto = byte(23);
  const src = ip.subarray(12, 16);
  const dst = ip.subarray(16, 20);
  const l4 = 14 + ihl;
  let payload: Uint8Array;
  let replyProto: number;
  if (proto === 6) {
    if (frame.length < l4 + 20) return undefined;
    const flags = byte(l4 + 13);
    if ((flags & 0x04) !== 0) return undefined; // never answer a RST
    const seq = view.getUint32(l4 + 4);
    const ack = view.getUint32(l4 + 8);
    const dataOff = (byte(l4 + 12) >> 4) * 4;
    const segLen = Math.max(0, totalLen - ihl - dataOff) + (flags & 0x02 ? 1 : 0) + (flags & 0x01 ? 1 : 0);
    const tcp = new Uint8Array(20);
    const t = new DataView(tcp.buffer);
    t.setUint16(0, view.getUint16(l4 + 2)); // from the Service port
    t.setUint16(2, view.getUint16(l4)); // to the client port
    const hasAck = (flags & 0x10) !== 0;
    t.setUint32(4, hasAck ? ack : 0);
    t.setUint32(8, (seq + segLen) >>> 0);
    tcp[12] = 5 << 4;
    tcp[13] = 0x14; // RST|ACK
    const pseudo = new Uint8Array(12);
    pseudo.set(dst, 0);
    pseudo.set(src, 4);
    pseudo[9] = 6;
    pseudo[11] = 20;
    const sum = inetChecksum(concat(pseudo, tcp));
    t.setUint16(16, sum);
    payload = tcp;
    replyProto = 6;
  } else {
    if (proto === 1 && frame.length > l4 && byte(l4) !== 8) return undefined; // only echo requests get errors
    const quoted = frame.subarray(14, Math.min(frame.length, l4 + 8));
    const icmp = new Uint8Array(8 + quoted.length);
    icmp[0] = 3;
    icmp[1] = 10;
    icmp.set(quoted, 8);
    const sum = inetChecksum(icmp);
    icmp[2] = sum >> 8;
    icmp[3] = sum & 0xff;
    payload = icmp;
    replyProto = 1;
  }
  const hdr = new Uint8Array(20);
  const h = new DataView(hdr.buffer);
  hdr[0] = 0x45;
  h.setUint16(2, 20 + payload.length);
  hdr[6] = 0x40; // DF
  hdr[8] = 64;
  hdr[9] = replyProto;
  hdr.set(dst, 12);
  hdr.set(src, 16);
  h.setUint16(10, inetChecksum(hdr));
  const eth = new Uint8Array(14);
  eth.set(frame.subarray(6, 12), 0);
  eth.set(frame.subarray(0, 6), 6);
  eth[12] = 0x08;
  return concat(concat(eth, hdr), payload);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Answers Service-reject packet-ins until the returned function is called. */
export function startServiceRejecter(sink: RejectSink, logger: Logger = nullLogger): () => void {
  const log = logger.child({ component: 'svc-reject' });
  let rejected = 0;
  return sink.onPacketIn((pin) => {
    if (pin.userdata?.[0] !== PACKET_IN_CATEGORY_SVC_REJECT) return;
    const reply = buildReject(pin.packet);
    const inPort = pin.metadata.get('in_port')?.value;
    if (reply === undefined || inPort === undefined) return;
    rejected++;
    log.debug('rejecting a connection to a Service without Endpoints', { inPort: Number(inPort), rejected });
    sink
      .packetOut({
        inPort: OFPP.CONTROLLER,
        actions: [{ type: 'output', port: Number(inPort), maxLen: 0 }],
        packet: reply,
      })
      .catch((err: unknown) => log.warn('packet-out of a reject failed', { err: errorMessage(err) }));
  });
}
