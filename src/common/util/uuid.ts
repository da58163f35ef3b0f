/**
 * Name-based UUIDs (RFC 9562 version 5: SHA-1 of a namespace UUID and a name).
 *
 * SHA-1 is computed here in plain JavaScript: names are short (one or two 64-byte blocks), and for
 * them this is several times faster than a `crypto.createHash` round trip per name, which matters
 * when the controller names 100k groups at start-up. The test suite checks it against node:crypto.
 */

const HEX = '0123456789abcdef';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidBytes(uuid: string): Uint8Array {
  if (!UUID_RE.test(uuid)) throw new RangeError(`"${uuid}" is not a UUID`);
  return Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'));
}

const W = new Int32Array(80);

/**
 * SHA-1 of the first `len` bytes of `buf`, written to `out` as five 32-bit words. `buf` must have
 * room for the padding (up to 72 bytes past `len`); its bytes from `len` on are overwritten.
 */
function sha1(buf: Uint8Array, len: number, out: Int32Array, view = new DataView(buf.buffer, buf.byteOffset)): void {
  const blocks = ((len + 8) >> 6) + 1;
  const total = blocks * 64;
  buf[len] = 0x80;
  buf.fill(0, len + 1, total - 4);
  view.setUint32(total - 4, (len * 8) >>> 0);
  let h0 = 0x67452301;
  let h1 = 0xefcdab89 | 0;
  let h2 = 0x98badcfe | 0;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0 | 0;
  for (let base = 0; base < total; base += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getInt32(base + i * 4);
    for (let i = 16; i < 80; i++) {
      const x = (W[i - 3] ?? 0) ^ (W[i - 8] ?? 0) ^ (W[i - 14] ?? 0) ^ (W[i - 16] ?? 0);
      W[i] = (x << 1) | (x >>> 31);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    let t: number;
    for (let i = 0; i < 20; i++) {
      t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + (W[i] ?? 0)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (let i = 20; i < 40; i++) {
      t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + (W[i] ?? 0)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (let i = 40; i < 60; i++) {
      t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e - 0x70e44324 + (W[i] ?? 0)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (let i = 60; i < 80; i++) {
      t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e - 0x359d3e2a + (W[i] ?? 0)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  out[0] = h0;
  out[1] = h1;
  out[2] = h2;
  out[3] = h3;
  out[4] = h4;
}

/** SHA-1 digest of `data` (exported for the test that compares it with node:crypto). */
export function sha1Digest(data: Uint8Array): Uint8Array {
  const words = new Int32Array(5);
  const buf = new Uint8Array(data.length + 72);
  buf.set(data);
  sha1(buf, data.length, words);
  const out = new Uint8Array(20);
  for (let i = 0; i < 20; i++) out[i] = ((words[i >> 2] ?? 0) >>> ((3 - (i & 3)) * 8)) & 0xff;
  return out;
}

/**
 * Returns a function computing version-5 UUIDs in `namespace`. The same name always gives the same
 * UUID, so objects named this way keep their names across restarts.
 */
export function uuidV5(namespace: string): (name: string) => string {
  const ns = uuidBytes(namespace);
  let buf = new Uint8Array(256);
  let view = new DataView(buf.buffer);
  const encoder = new TextEncoder();
  const words = new Int32Array(5);
  const out = Buffer.allocUnsafe(36);
  return (name: string): string => {
    if (16 + name.length * 3 + 72 > buf.length) {
      buf = new Uint8Array(16 + name.length * 3 + 72);
      view = new DataView(buf.buffer);
    }
    buf.set(ns, 0);
    let len = 16;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c >= 0x80) {
        len = 16 + encoder.encodeInto(name, buf.subarray(16, buf.length - 72)).written;
        break;
      }
      buf[len++] = c;
    }
    sha1(buf, len, words, view);
    let o = 0;
    for (let i = 0; i < 16; i++) {
      let byte = ((words[i >> 2] ?? 0) >>> ((3 - (i & 3)) * 8)) & 0xff;
      if (i === 6) byte = (byte & 0x0f) | 0x50;
      if (i === 8) byte = (byte & 0x3f) | 0x80;
      if (i === 4 || i === 6 || i === 8 || i === 10) out[o++] = 0x2d;
      out[o++] = HEX.charCodeAt(byte >> 4);
      out[o++] = HEX.charCodeAt(byte & 15);
    }
    // One flat string (template concatenation would keep a tree of string pieces per UUID).
    return out.toString('latin1');
  };
}
