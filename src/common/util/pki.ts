/**
 * A minimal X.509 issuer: self-signed ECDSA P-256 CAs and server certificates they sign (SANs for
 * DNS names and IPs, serverAuth), DER-encoded here and signed with node:crypto. Enough for Go's
 * crypto/x509 (kubectl, Go agents) and Node's TLS to verify the chain. Used by the lab's API server
 * and by antrea-controller's self-signed serving certificate.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { parseIP } from './ipaddr.ts';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);

function integer(b: Buffer): Buffer {
  let v = b;
  while (v.length > 1 && v[0] === 0 && ((v[1] ?? 0) & 0x80) === 0) v = v.subarray(1);
  if (((v[0] ?? 0) & 0x80) !== 0) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

function oid(s: string): Buffer {
  const parts = s.split('.').map(Number);
  const out: number[] = [(parts[0] ?? 0) * 40 + (parts[1] ?? 0)];
  for (const p of parts.slice(2)) {
    const stack: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) stack.unshift((v & 0x7f) | 0x80);
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bitString = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.from([unused]), b);
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));

function time(ms: number): Buffer {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const two = (n: number): string => String(n).padStart(2, '0');
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${two(y % 100)}${rest}`));
  return tlv(0x18, Buffer.from(`${y}${rest}`));
}

function name(cn: string, org?: string): Buffer {
  const rdns = [set(seq(oid('2.5.4.3'), utf8(cn)))];
  if (org !== undefined) rdns.unshift(set(seq(oid('2.5.4.10'), utf8(org))));
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function ipBytes(ip: string): Buffer {
  const p = parseIP(ip);
  if (p === undefined) throw new RangeError(`"${ip}" is not an IP address`);
  return Buffer.from(p.bytes);
}

function keyId(pub: KeyObject): Buffer {
  const spki = pub.export({ type: 'spki', format: 'der' });
  return createHash('sha1').update(spki).digest();
}

export interface CertOptions {
  readonly commonName: string;
  readonly organization?: string;
  readonly isCA: boolean;
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  readonly notBefore: number;
  readonly notAfter: number;
  /** Defaults to serverAuth for leaf certificates. */
  readonly extKeyUsage?: readonly ('serverAuth' | 'clientAuth')[];
}

export interface Issuer {
  readonly certPem: string;
  readonly keyPem: string;
}

const EKU: Record<'serverAuth' | 'clientAuth', string> = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

/** Creates a key pair and a certificate for it, self-signed or signed by `issuer`. */
export function createCertificate(o: CertOptions, issuer?: Issuer): Issuer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signerKey = issuer === undefined ? privateKey : createPrivateKey(issuer.keyPem);
  const issuerCert = issuer === undefined ? undefined : new X509Certificate(issuer.certPem);
  const issuerName =
    issuerCert === undefined ? name(o.commonName, o.organization) : Buffer.from(rawSubject(issuerCert));
  const issuerPub = issuerCert === undefined ? publicKey : issuerCert.publicKey;
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const sigAlg = seq(oid('1.2.840.10045.4.3.2'));
  const exts: Buffer[] = [];
  exts.push(
    extension('2.5.29.15', true, o.isCA ? bitString(Buffer.from([0x86]), 1) : bitString(Buffer.from([0xa0]), 5)),
  );
  if (!o.isCA || o.extKeyUsage !== undefined) {
    exts.push(extension('2.5.29.37', false, seq(...(o.extKeyUsage ?? ['serverAuth']).map((u) => oid(EKU[u])))));
  }
  exts.push(extension('2.5.29.19', true, o.isCA ? seq(bool(true)) : seq()));
  exts.push(extension('2.5.29.14', false, octets(keyId(publicKey))));
  if (issuer !== undefined) exts.push(extension('2.5.29.35', false, seq(tlv(0x80, keyId(issuerPub)))));
  const sans = [
    ...(o.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...(o.ips ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  if (sans.length > 0) exts.push(extension('2.5.29.17', false, seq(...sans)));
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    sigAlg,
    issuerName,
    seq(time(o.notBefore), time(o.notAfter)),
    name(o.commonName, o.organization),
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, signerKey);
  const der = seq(tbs, sigAlg, bitString(signature));
  const pem = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  return { certPem: pem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** The DER of a certificate's subject Name (to use it as the issuer of certificates it signs). */
function rawSubject(cert: X509Certificate): Buffer {
  // Walk the DER: Certificate -> TBSCertificate -> [version, serial, sigAlg, issuer, validity, subject].
  const der = cert.raw;
  const read = (buf: Buffer, off: number): { start: number; end: number; headerEnd: number } => {
    let p = off + 1;
    let l = buf[p] ?? 0;
    p++;
    if (l & 0x80) {
      const n = l & 0x7f;
      l = 0;
      for (let i = 0; i < n; i++) l = l * 256 + (buf[p + i] ?? 0);
      p += n;
    }
    return { start: off, headerEnd: p, end: p + l };
  };
  const certSeq = read(der, 0);
  const tbs = read(der, certSeq.headerEnd);
  let p = tbs.headerEnd;
  const fields: { start: number; end: number }[] = [];
  while (p < tbs.end && fields.length < 6) {
    const f = read(der, p);
    fields.push(f);
    p = f.end;
  }
  const hasVersion = der[tbs.headerEnd] === 0xa0;
  const subject = fields[hasVersion ? 5 : 4];
  if (subject === undefined) throw new Error('malformed certificate');
  return der.subarray(subject.start, subject.end);
}

export interface ServingPki {
  readonly ca: Issuer;
  readonly server: Issuer;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * A CA and a serving certificate it signs for the given names and IPs. Defaults: the lab's names, a
 * 10-year CA and a 1-year serving certificate, both valid from one hour ago.
 */
export function createServingPki(opts: {
  now: number;
  dnsNames: readonly string[];
  ips: readonly string[];
  ca?: Issuer;
  caCommonName?: string;
  serverCommonName?: string;
  caValidityMs?: number;
  serverValidityMs?: number;
}): ServingPki {
  const notBefore = opts.now - 3600_000;
  const ca =
    opts.ca ??
    createCertificate({
      commonName: opts.caCommonName ?? 'antrea-lab-ca',
      isCA: true,
      notBefore,
      notAfter: opts.now + (opts.caValidityMs ?? 3650 * DAY_MS),
    });
  const server = createCertificate(
    {
      commonName: opts.serverCommonName ?? 'kube-apiserver',
      isCA: false,
      dnsNames: opts.dnsNames,
      ips: opts.ips,
      notBefore,
      notAfter: opts.now + (opts.serverValidityMs ?? 365 * DAY_MS),
    },
    ca,
  );
  return { ca, server };
}

/** Whether `certPem` is currently valid and was issued by `caPem` (for reusing persisted certificates). */
export function certificateUsable(
  certPem: string,
  caPem: string,
  now: number,
  names: readonly string[],
  ips: readonly string[],
): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    if (!cert.verify(ca.publicKey)) return false;
    if (Date.parse(cert.validTo) < now + DAY_MS) return false;
    const san = cert.subjectAltName ?? '';
    return (
      names.every((n) => san.includes(`DNS:${n}`)) &&
      ips.every((ip) => san.includes(`IP Address:${ip.toUpperCase()}`) || san.includes(`IP Address:${ip}`))
    );
  } catch {
    return false;
  }
}

export function publicKeyPem(keyPem: string): string {
  return createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString();
}
