/**
 * The few libc calls netlink cannot make, through koffi: entering a network namespace (setns),
 * AF_PACKET sockets for gratuitous ARP, and the ethtool ioctl that turns TX checksum offload off.
 *
 * setns(2) switches the namespace of the calling thread, which in Node is the main JS thread. So
 * {@link inNetns} only runs synchronous code: it enters, runs, and switches back before returning,
 * with no chance for other JavaScript (or a promise continuation) to run in between. Sockets created
 * inside stay bound to that namespace after the switch back, which is how the agent reaches a Pod's
 * namespace with ordinary asynchronous I/O.
 */
import { closeSync, openSync } from 'node:fs';
import koffi from 'koffi';
import { HostNetworkError } from '../../common/host/errors.ts';

const CLONE_NEWNET = 0x40000000;
const AF_INET = 2;
const AF_PACKET = 17;
const SOCK_DGRAM = 2;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SIOCETHTOOL = 0x8946;
const ETHTOOL_GTXCSUM = 0x16;
const ETHTOOL_STXCSUM = 0x17;

interface Libc {
  setns: (fd: number, nstype: number) => number;
  socket: (domain: number, type: number, protocol: number) => number;
  close: (fd: number) => number;
  sendto: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => number;
  ioctlEthtool: (
    fd: number,
    request: number,
    ifr: { ifr_name: string; ifr_data: { cmd: number; data: number } },
  ) => number;
  ioctlEthtoolGet: (fd: number, request: number, ifr: Buffer) => number;
}

let libc: Libc | undefined;

function lib(): Libc {
  if (libc !== undefined) return libc;
  const c = koffi.load('libc.so.6');
  const ethtoolValue = koffi.struct('antrea_ethtool_value', { cmd: 'uint32_t', data: 'uint32_t' });
  const ifreq = koffi.struct('antrea_ifreq_data', {
    ifr_name: koffi.array('char', 16, 'String'),
    ifr_data: koffi.pointer(ethtoolValue),
    pad: koffi.array('uint8_t', 16),
  });
  libc = {
    setns: c.func('int setns(int fd, int nstype)') as Libc['setns'],
    socket: c.func('int socket(int domain, int type, int protocol)') as Libc['socket'],
    close: c.func('int close(int fd)') as Libc['close'],
    sendto: c.func('sendto', 'long', ['int', 'void *', 'size_t', 'int', 'void *', 'uint32_t']) as Libc['sendto'],
    ioctlEthtool: c.func('ioctl', 'int', ['int', 'unsigned long', koffi.pointer(ifreq)]) as Libc['ioctlEthtool'],
    ioctlEthtoolGet: c.func('ioctl', 'int', ['int', 'unsigned long', 'void *']) as Libc['ioctlEthtoolGet'],
  };
  return libc;
}

function errnoName(): string {
  const n = koffi.errno();
  const name = Object.entries(koffi.os.errno).find(([, v]) => v === n)?.[0];
  return name ?? `errno ${n}`;
}

function fail(what: string): never {
  throw new HostNetworkError('HOST_OPERATION_FAILED', `${what}: ${errnoName()}`, { details: { errno: koffi.errno() } });
}

let homeFd: number | undefined;

/** The namespace the agent runs in, opened once (kept open for the process's life). */
function home(): number {
  homeFd ??= openSync('/proc/thread-self/ns/net', 'r');
  return homeFd;
}

/**
 * Runs `fn` with the calling thread inside the network namespace at `netnsPath` and switches back
 * before returning. `fn` must be synchronous; a returned promise is rejected as a programming error.
 * Throws the ENOENT of opening the path when the namespace does not exist.
 */
export function inNetns<T>(netnsPath: string, fn: () => T): T {
  const back = home();
  const fd = openSync(netnsPath, 'r');
  try {
    if (lib().setns(fd, CLONE_NEWNET) !== 0) fail(`setns(${netnsPath})`);
    try {
      const out = fn();
      if (typeof (out as { then?: unknown } | undefined)?.then === 'function') {
        throw new Error('inNetns: the callback must be synchronous');
      }
      return out;
    } finally {
      if (lib().setns(back, CLONE_NEWNET) !== 0) {
        // Staying in the Pod's namespace would misdirect everything that follows.
        process.abort();
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Closes a descriptor from {@link openPacketSocket} or the ethtool socket. */
export function closeFd(fd: number): void {
  lib().close(fd);
}

/** An AF_PACKET raw socket for sending only (protocol 0: receives nothing), in the current namespace. */
export function openPacketSocket(): number {
  const fd = lib().socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket(AF_PACKET)');
  return fd;
}

/** Sends one Ethernet frame out of interface `ifindex` through a packet socket. */
export function sendFrame(fd: number, ifindex: number, frame: Buffer, etherType: number): void {
  const sll = Buffer.alloc(20);
  sll.writeUInt16LE(AF_PACKET, 0);
  sll.writeUInt16BE(etherType, 2);
  sll.writeInt32LE(ifindex, 4);
  sll.writeUInt8(6, 11); // sll_halen
  frame.copy(sll, 12, 0, 6); // destination MAC
  if (lib().sendto(fd, frame, frame.length, 0, sll, sll.length) < 0) fail(`sendto(ifindex ${ifindex})`);
}

/** Turns TX checksum offload off on `ifname` in the current namespace (ethtool -K IF tx off). */
export function disableTxChecksum(ifname: string): void {
  const fd = lib().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket(AF_INET)');
  try {
    const rc = lib().ioctlEthtool(fd, SIOCETHTOOL, { ifr_name: ifname, ifr_data: { cmd: ETHTOOL_STXCSUM, data: 0 } });
    if (rc !== 0) fail(`ethtool STXCSUM off on ${ifname}`);
  } finally {
    lib().close(fd);
  }
}

/** Whether TX checksum offload is on for `ifname` in the current namespace (ethtool -k IF). */
export function txChecksumEnabled(ifname: string): boolean {
  const fd = lib().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket(AF_INET)');
  try {
    // struct ethtool_value { u32 cmd; u32 data; } read back through ifr_data.
    const value = Buffer.alloc(8);
    value.writeUInt32LE(ETHTOOL_GTXCSUM, 0);
    const ifr = Buffer.alloc(40);
    ifr.write(ifname, 0, 15, 'utf8');
    ifr.writeBigUInt64LE(koffi.address(value), 16);
    if (lib().ioctlEthtoolGet(fd, SIOCETHTOOL, ifr) !== 0) fail(`ethtool GTXCSUM on ${ifname}`);
    return value.readUInt32LE(4) !== 0;
  } finally {
    lib().close(fd);
  }
}
