/**
 * HPACK (RFC 7541), as much as a unary gRPC client needs: encoding request headers as literals
 * (never indexed into the peer's table, no Huffman), and decoding any header block a server sends
 * (static and dynamic tables, table size updates, Huffman-coded strings).
 */

/** RFC 7541 Appendix A: the static table, index 1..61. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/**
 * RFC 7541 Appendix B: the Huffman code length of each symbol 0..256 (256 is EOS). The code is
 * canonical (codes of one length are consecutive, in symbol order, shorter lengths first), so the
 * lengths determine the codes.
 */
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
  28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6,
  5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23,
  22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22,
  23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26,
  20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27,
  27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27,
  27, 27, 27, 26, 30,
];

export class HpackError extends Error {
  readonly code = 'HPACK_DECODE_FAILED';
  override readonly name = 'HpackError';
}

interface Canonical {
  /** Per length: the first code, how many codes, where its symbols start in `symbols`. */
  readonly first: number[];
  readonly count: number[];
  readonly offset: number[];
  readonly symbols: number[];
}

let canonical: Canonical | undefined;

function huffman(): Canonical {
  if (canonical !== undefined) return canonical;
  const symbols = HUFFMAN_LENGTHS.map((_, s) => s).sort(
    (a, b) => (HUFFMAN_LENGTHS[a] ?? 0) - (HUFFMAN_LENGTHS[b] ?? 0) || a - b,
  );
  const first: number[] = Array<number>(31).fill(0);
  const count: number[] = Array<number>(31).fill(0);
  const offset: number[] = Array<number>(31).fill(0);
  for (const l of HUFFMAN_LENGTHS) count[l] = (count[l] ?? 0) + 1;
  let code = 0;
  let pos = 0;
  for (let len = 1; len <= 30; len++) {
    code = (code + (count[len - 1] ?? 0)) << 1;
    if (len === 1) code = 0;
    first[len] = code;
    offset[len] = pos;
    pos += count[len] ?? 0;
  }
  canonical = { first, count, offset, symbols };
  return canonical;
}

/** The Huffman code of a symbol (for tests: the table's known codes). */
export function huffmanCode(symbol: number): { code: number; bits: number } {
  const h = huffman();
  const bits = HUFFMAN_LENGTHS[symbol] ?? 0;
  const rank = h.symbols.indexOf(symbol) - (h.offset[bits] ?? 0);
  return { code: (h.first[bits] ?? 0) + rank, bits };
}

/** Decodes a Huffman-coded string (RFC 7541 §5.2): padding must be at most 7 one-bits; EOS is an error. */
export function huffmanDecode(data: Uint8Array): string {
  const h = huffman();
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of data) {
    for (let i = 7; i >= 0; i--) {
      code = (code << 1) | ((byte >> i) & 1);
      len++;
      if (len > 30) throw new HpackError('invalid Huffman code');
      const idx = code - (h.first[len] ?? 0);
      if (idx >= 0 && idx < (h.count[len] ?? 0)) {
        const sym = h.symbols[(h.offset[len] ?? 0) + idx] ?? 0;
        if (sym === 256) throw new HpackError('EOS in a Huffman string');
        out.push(sym);
        code = 0;
        len = 0;
      }
    }
  }
  if (len > 7 || code !== (1 << len) - 1) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out).toString('latin1');
}

function encodeInt(value: number, prefixBits: number, firstByte: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByte | value];
  const out = [firstByte | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function encodeString(s: string): number[] {
  const b = Buffer.from(s, 'latin1');
  return [...encodeInt(b.length, 7, 0), ...b];
}

/** Encodes headers as "literal without indexing, new name" fields (no Huffman, no table state). */
export function encodeHeaders(headers: readonly (readonly [string, string])[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of headers) out.push(0x00, ...encodeString(name), ...encodeString(value));
  return Buffer.from(out);
}

/** A decoder keeps the dynamic table between header blocks of one connection. */
export class HpackDecoder {
  private dynamic: [string, string][] = [];
  private size = 0;
  private maxSize = 4096;

  private entry(index: number): readonly [string, string] {
    if (index < 1) throw new HpackError('header index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] ?? ['', ''];
    const e = this.dynamic[index - STATIC_TABLE.length - 1];
    if (e === undefined) throw new HpackError(`header index ${index} out of range`);
    return e;
  }

  private add(name: string, value: string): void {
    const sz = name.length + value.length + 32;
    this.dynamic.unshift([name, value]);
    this.size += sz;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize) {
      const last = this.dynamic.pop();
      if (last === undefined) break;
      this.size -= last[0].length + last[1].length + 32;
    }
  }

  /** Decodes one complete header block. */
  decode(block: Uint8Array): [string, string][] {
    const out: [string, string][] = [];
    let pos = 0;
    const byte = (): number => {
      const b = block[pos++];
      if (b === undefined) throw new HpackError('truncated header block');
      return b;
    };
    const int = (first: number, prefixBits: number): number => {
      const max = (1 << prefixBits) - 1;
      let v = first & max;
      if (v < max) return v;
      let m = 1;
      for (;;) {
        const b = byte();
        v += (b & 0x7f) * m;
        m *= 128;
        if ((b & 0x80) === 0) return v;
        if (m > 2 ** 35) throw new HpackError('integer too large');
      }
    };
    const str = (): string => {
      const first = byte();
      const len = int(first, 7);
      if (pos + len > block.length) throw new HpackError('truncated string');
      const raw = block.subarray(pos, pos + len);
      pos += len;
      return (first & 0x80) !== 0 ? huffmanDecode(raw) : Buffer.from(raw).toString('latin1');
    };
    while (pos < block.length) {
      const b = byte();
      if ((b & 0x80) !== 0) {
        const [n, v] = this.entry(int(b, 7));
        out.push([n, v]);
      } else if ((b & 0x40) !== 0) {
        const idx = int(b, 6);
        const name = idx === 0 ? str() : this.entry(idx)[0];
        const value = str();
        this.add(name, value);
        out.push([name, value]);
      } else if ((b & 0x20) !== 0) {
        this.maxSize = int(b, 5);
        this.evict();
      } else {
        const idx = int(b, 4);
        const name = idx === 0 ? str() : this.entry(idx)[0];
        out.push([name, str()]);
      }
    }
    return out;
  }
}
