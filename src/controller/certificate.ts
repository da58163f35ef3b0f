/**
 * The controller's serving certificate and the CA bundle agents trust (Antrea's
 * pkg/apiserver/certificate):
 *
 * - {@link SelfSignedCertificateProvider} (`selfSignedCert: true`, the default): a CA and a serving
 *   certificate it signs (ECDSA P-256, issued by common/util/pki.ts), kept in Secret
 *   `antrea-controller-tls` (type kubernetes.io/tls: `tls.crt` = certificate + CA, `tls.key`,
 *   `ca.crt`) so restarts reuse them. They are replaced when less than `minValidMs` (90 days) of
 *   validity remain, checked at start and every hour. The published bundle keeps the previous CA
 *   next to the new one, so agents that have not yet seen the new CA keep verifying the old
 *   certificate and the ones that have accept both.
 * - {@link FileCertificateProvider} (`selfSignedCert: false`): `ca.crt`, `tls.crt` and `tls.key` in a
 *   directory (the mounted Secret), waited for up to 2 minutes at start and re-read every minute.
 *
 * {@link CABundlePublisher} writes the bundle to ConfigMap `antrea-ca` (key `ca.crt`, label
 * app=antrea) whenever it changes and every 2 minutes (repairing overwrites), retrying failures.
 * A new certificate is served only after its CA was published (see `onChange`).
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Backoff } from '../common/util/backoff.ts';
import { abortReason, type Clock, systemClock } from '../common/util/clock.ts';
import { AntreaError, errorMessage } from '../common/util/errors.ts';
import { Latch } from '../common/util/latch.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import { createServingPki } from '../common/util/pki.ts';
import type { Runnable } from '../common/util/runnable.ts';
import { isConflict, type ControllerKubeClient, type KubeSecret } from './kube.ts';

const DAY_MS = 24 * 3600 * 1000;

/** What the server serves and what clients must trust. */
export interface ServingCertificate {
  /** The certificate chain (PEM). */
  readonly certPem: string;
  readonly keyPem: string;
  /** The CA bundle to publish (PEM, one or more certificates). */
  readonly caBundlePem: string;
  /** When the serving certificate expires (ms since the epoch). */
  readonly notAfter: number;
}

export interface CertificateProvider extends Runnable {
  /** The current certificate; undefined until the first one is ready. */
  current(): ServingCertificate | undefined;
  /** Resolves once a certificate is available. */
  waitReady(signal?: AbortSignal): Promise<void>;
  /**
   * Calls `listener` with each new certificate, awaiting it before the provider goes on (publish the
   * CA there before serving the certificate). A listener that rejects is logged.
   */
  onChange(listener: (cert: ServingCertificate) => Promise<void> | void): () => void;
}

export class CertificateError extends AntreaError<'CERTIFICATE_INVALID'> {
  constructor(message: string) {
    super('CERTIFICATE_INVALID', message);
  }
}

/** The certificates of a PEM bundle. */
export function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((c) => c + '\n') ?? [];
}

/**
 * Checks a certificate, its key and its CA: the key matches, the CA signed it, and both are valid
 * at `now` for at least `minValidMs` more. Returns the certificate's expiry; throws a
 * CertificateError naming the problem.
 */
export function checkServingCertificate(
  certPem: string,
  keyPem: string,
  caPem: string,
  now: number,
  minValidMs: number,
  dnsNames: readonly string[] = [],
): number {
  let leaf: X509Certificate;
  let cas: X509Certificate[];
  try {
    const chain = splitPem(certPem);
    if (chain.length === 0) throw new Error('no certificate in tls.crt');
    leaf = new X509Certificate(chain[0] ?? '');
    cas = splitPem(caPem).map((c) => new X509Certificate(c));
    if (cas.length === 0) throw new Error('no certificate in ca.crt');
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) throw new Error('tls.key does not match tls.crt');
  } catch (err) {
    if (err instanceof CertificateError) throw err;
    throw new CertificateError(`unusable certificate: ${errorMessage(err)}`);
  }
  const signer = cas.find((ca) => leaf.verify(ca.publicKey));
  if (signer === undefined) throw new CertificateError('tls.crt is not signed by ca.crt');
  for (const [what, c] of [
    ['certificate', leaf],
    ['CA', signer],
  ] as const) {
    if (Date.parse(c.validFrom) > now) throw new CertificateError(`the ${what} is not valid before ${c.validFrom}`);
    if (Date.parse(c.validTo) - now < minValidMs) {
      throw new CertificateError(
        `the ${what} expires at ${c.validTo}, less than ${Math.round(minValidMs / DAY_MS)} days away`,
      );
    }
  }
  const san = leaf.subjectAltName ?? '';
  for (const d of dnsNames)
    if (!san.split(', ').includes(`DNS:${d}`)) throw new CertificateError(`the certificate lacks DNS name ${d}`);
  return Date.parse(leaf.validTo);
}

/** What every provider shares: the current certificate, the ready latch and the change listeners. */
abstract class ProviderBase implements CertificateProvider {
  protected readonly log: Logger;
  private readonly listeners = new Set<(c: ServingCertificate) => Promise<void> | void>();
  private readonly ready = new Latch();
  private cert: ServingCertificate | undefined;

  constructor(log: Logger) {
    this.log = log;
  }

  abstract run(signal: AbortSignal): Promise<void>;

  current(): ServingCertificate | undefined {
    return this.cert;
  }

  waitReady(signal?: AbortSignal): Promise<void> {
    return this.ready.wait(signal);
  }

  onChange(listener: (cert: ServingCertificate) => Promise<void> | void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Tells the listeners (in order, awaiting each), then makes `c` current. */
  protected async install(c: ServingCertificate): Promise<void> {
    for (const l of this.listeners) {
      try {
        await l(c);
      } catch (err) {
        this.log.error('certificate listener failed', { err: errorMessage(err) });
      }
    }
    this.cert = c;
    this.ready.open();
  }
}

/** A fixed certificate (tests, benchmarks, or a caller that manages rotation itself). */
export class StaticCertificateProvider extends ProviderBase {
  constructor(cert: { certPem: string; keyPem: string; caBundlePem: string }) {
    super(nullLogger);
    void this.install({ ...cert, notAfter: Date.parse(new X509Certificate(splitPem(cert.certPem)[0] ?? '').validTo) });
  }

  run(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }
}

export interface SelfSignedOptions {
  readonly kube: ControllerKubeClient;
  /** The Antrea namespace (Secret and Service live there). */
  readonly namespace: string;
  readonly secretName?: string;
  readonly serviceName?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Validity of a new CA and certificate (default 365 days). */
  readonly validityMs?: number;
  /** Replace them when less than this remains (default 90 days). */
  readonly minValidMs?: number;
  /** How often to check (default 1 hour). */
  readonly checkIntervalMs?: number;
  /** Retry delays after a failed check. */
  readonly backoff?: Backoff;
}

/** Reads a Secret's base64 value. */
function secretValue(s: KubeSecret, key: string): string {
  const v = s.data?.[key];
  return v === undefined ? '' : Buffer.from(v, 'base64').toString('utf8');
}

export class SelfSignedCertificateProvider extends ProviderBase {
  private readonly o: Required<Omit<SelfSignedOptions, 'backoff' | 'logger' | 'clock'>>;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  /** The CA of the previous certificate, published next to the new one while it is still valid. */
  private previousCa: string | undefined;

  constructor(opts: SelfSignedOptions) {
    super((opts.logger ?? nullLogger).child({ component: 'self-signed-cert' }));
    this.o = {
      kube: opts.kube,
      namespace: opts.namespace,
      secretName: opts.secretName ?? 'antrea-controller-tls',
      serviceName: opts.serviceName ?? 'antrea',
      validityMs: opts.validityMs ?? 365 * DAY_MS,
      minValidMs: opts.minValidMs ?? 90 * DAY_MS,
      checkIntervalMs: opts.checkIntervalMs ?? 3600_000,
    };
    if (this.o.validityMs <= this.o.minValidMs) {
      throw new RangeError('validityMs must exceed minValidMs, or every check would rotate');
    }
    this.clock = opts.clock ?? systemClock;
    this.backoff = opts.backoff ?? new Backoff({ initialMs: 1000, maxMs: 60_000, jitter: 0.2 });
  }

  /** DNS names the certificate carries. */
  get dnsNames(): string[] {
    const { serviceName: s, namespace: n } = this.o;
    return [s, `${s}.${n}`, `${s}.${n}.svc`, `${s}.${n}.svc.cluster.local`, 'localhost'];
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let delay = this.o.checkIntervalMs;
      try {
        await this.sync();
        this.backoff.reset();
      } catch (err) {
        delay = this.backoff.next();
        this.log.warn('certificate check failed, retrying', { err: errorMessage(err), retryInMs: Math.round(delay) });
      }
      try {
        await this.clock.sleep(delay, signal);
      } catch {
        return;
      }
    }
  }

  /**
   * One check: adopt the Secret's certificate if usable, else issue a new one and store it. Safe to
   * repeat; two controllers racing converge on whichever Secret write wins (the loser re-reads).
   */
  async sync(): Promise<void> {
    const now = this.clock.now();
    const { kube, namespace, secretName } = this.o;
    const secret = await kube.secrets.get(namespace, secretName);
    if (secret !== undefined) {
      const certPem = secretValue(secret, 'tls.crt');
      const keyPem = secretValue(secret, 'tls.key');
      const caPem = secretValue(secret, 'ca.crt') || (splitPem(certPem)[1] ?? '');
      try {
        const notAfter = checkServingCertificate(certPem, keyPem, caPem, now, this.o.minValidMs, this.dnsNames);
        await this.adopt({ certPem, keyPem, caPem, notAfter });
        return;
      } catch (err) {
        if (!(err instanceof CertificateError)) throw err;
        this.log.info('replacing the stored certificate', { reason: err.message });
        // Keep trusting the old CA while agents switch, if it is still valid.
        const oldCa = splitPem(caPem)[0];
        if (oldCa !== undefined && this.stillValid(oldCa, now)) this.previousCa = oldCa;
      }
    }
    const pki = createServingPki({
      now,
      dnsNames: this.dnsNames,
      ips: ['127.0.0.1', '::1'],
      caCommonName: `antrea-ca@${Math.floor(now / 1000)}`,
      serverCommonName: this.o.serviceName,
      caValidityMs: this.o.validityMs,
      serverValidityMs: this.o.validityMs,
    });
    const certPem = pki.server.certPem + pki.ca.certPem;
    const data = {
      'tls.crt': Buffer.from(certPem).toString('base64'),
      'tls.key': Buffer.from(pki.server.keyPem).toString('base64'),
      'ca.crt': Buffer.from(pki.ca.certPem).toString('base64'),
    };
    const metadata = { name: secretName, namespace, labels: { app: 'antrea' } };
    try {
      if (secret === undefined) await kube.secrets.create({ metadata, type: 'kubernetes.io/tls', data });
      else {
        await kube.secrets.update({
          metadata: {
            ...metadata,
            ...(secret.metadata.resourceVersion === undefined
              ? {}
              : { resourceVersion: secret.metadata.resourceVersion }),
          },
          type: 'kubernetes.io/tls',
          data,
        });
      }
    } catch (err) {
      // Another controller wrote it first: adopt theirs on the next check.
      if (isConflict(err)) this.log.info('the certificate Secret changed meanwhile, re-reading');
      throw err;
    }
    this.log.info('issued a new self-signed certificate', {
      notAfter: new Date(now + this.o.validityMs).toISOString(),
    });
    await this.adopt({
      certPem,
      keyPem: pki.server.keyPem,
      caPem: pki.ca.certPem,
      notAfter: Date.parse(new X509Certificate(pki.server.certPem).validTo),
    });
  }

  private stillValid(pem: string, now: number): boolean {
    try {
      return Date.parse(new X509Certificate(pem).validTo) > now;
    } catch {
      return false;
    }
  }

  private async adopt(c: { certPem: string; keyPem: string; caPem: string; notAfter: number }): Promise<void> {
    const now = this.clock.now();
    if (
      this.previousCa !== undefined &&
      (!this.stillValid(this.previousCa, now) || c.caPem.includes(this.previousCa.trim()))
    ) {
      this.previousCa = undefined;
    }
    const caBundlePem = this.previousCa === undefined ? c.caPem : c.caPem + this.previousCa;
    const cur = this.current();
    if (cur?.certPem === c.certPem && cur.keyPem === c.keyPem && cur.caBundlePem === caBundlePem) return;
    await this.install({ certPem: c.certPem, keyPem: c.keyPem, caBundlePem, notAfter: c.notAfter });
  }
}

export interface FileProviderOptions {
  /** Directory holding ca.crt, tls.crt and tls.key. */
  readonly dir: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** How long to wait for the files at start (default 2 minutes). */
  readonly readyTimeoutMs?: number;
  /** Poll period while waiting (default 2 s). */
  readonly waitPollMs?: number;
  /** How often to re-read them (default 1 minute). */
  readonly reloadMs?: number;
}

export class FileCertificateProvider extends ProviderBase {
  private readonly o: Required<Omit<FileProviderOptions, 'clock' | 'logger'>>;
  private readonly clock: Clock;
  private fingerprint = '';

  constructor(opts: FileProviderOptions) {
    super((opts.logger ?? nullLogger).child({ component: 'provided-cert', dir: opts.dir }));
    this.o = {
      dir: opts.dir,
      readyTimeoutMs: opts.readyTimeoutMs ?? 120_000,
      waitPollMs: opts.waitPollMs ?? 2000,
      reloadMs: opts.reloadMs ?? 60_000,
    };
    this.clock = opts.clock ?? systemClock;
  }

  private files(): { ca: string; cert: string; key: string } {
    return { ca: join(this.o.dir, 'ca.crt'), cert: join(this.o.dir, 'tls.crt'), key: join(this.o.dir, 'tls.key') };
  }

  /** Reads and checks the files; returns false when one is missing. Throws a CertificateError when they are unusable. */
  async load(): Promise<boolean> {
    const f = this.files();
    let ca: string;
    let cert: string;
    let key: string;
    try {
      for (const p of Object.values(f)) statSync(p);
      ca = readFileSync(f.ca, 'utf8');
      cert = readFileSync(f.cert, 'utf8');
      key = readFileSync(f.key, 'utf8');
    } catch {
      return false;
    }
    const fp = createHash('sha256').update(ca).update('\0').update(cert).update('\0').update(key).digest('hex');
    if (fp === this.fingerprint) return true;
    const notAfter = checkServingCertificate(cert, key, ca, this.clock.now(), 0);
    await this.install({ certPem: cert, keyPem: key, caBundlePem: ca, notAfter });
    this.fingerprint = fp;
    this.log.info('loaded the provided certificate', { notAfter: new Date(notAfter).toISOString() });
    return true;
  }

  async run(signal: AbortSignal): Promise<void> {
    const start = this.clock.monotonic();
    while (!signal.aborted && this.current() === undefined) {
      try {
        if (await this.load()) break;
      } catch (err) {
        this.log.error('the provided certificate is unusable', { err: errorMessage(err) });
      }
      if (this.clock.monotonic() - start >= this.o.readyTimeoutMs) {
        throw new CertificateError(
          `no usable ca.crt, tls.crt and tls.key in ${this.o.dir} after ${this.o.readyTimeoutMs} ms`,
        );
      }
      try {
        await this.clock.sleep(this.o.waitPollMs, signal);
      } catch {
        return;
      }
    }
    while (!signal.aborted) {
      try {
        await this.clock.sleep(this.o.reloadMs, signal);
      } catch {
        return;
      }
      try {
        if (!(await this.load())) this.log.warn('the provided certificate files disappeared; keeping the last ones');
      } catch (err) {
        this.log.error('the provided certificate changed but is unusable; keeping the last one', {
          err: errorMessage(err),
        });
      }
    }
  }
}

export interface CABundlePublisherOptions {
  readonly kube: ControllerKubeClient;
  readonly namespace: string;
  readonly configMapName?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Re-publish period (default 2 minutes). */
  readonly resyncMs?: number;
  readonly backoff?: Backoff;
}

/** Publishes the CA bundle in ConfigMap `antrea-ca` (key `ca.crt`). */
export class CABundlePublisher implements Runnable {
  private readonly o: CABundlePublisherOptions & { configMapName: string; resyncMs: number };
  private readonly clock: Clock;
  private readonly log: Logger;
  private bundle: string | undefined;
  /** Writes done (create or update), for tests. */
  writes = 0;

  constructor(opts: CABundlePublisherOptions) {
    this.o = { ...opts, configMapName: opts.configMapName ?? 'antrea-ca', resyncMs: opts.resyncMs ?? 120_000 };
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? nullLogger).child({ component: 'ca-publisher' });
  }

  /** Writes `bundle` once (create, or update if different). Throws on failure. */
  async publishOnce(bundle: string): Promise<void> {
    const { kube, namespace, configMapName } = this.o;
    const cm = await kube.configMaps.get(namespace, configMapName);
    const metadata = { name: configMapName, namespace, labels: { app: 'antrea' } };
    if (cm === undefined) {
      await kube.configMaps.create({ metadata, data: { 'ca.crt': bundle } });
      this.writes++;
    } else if (cm.data?.['ca.crt'] !== bundle) {
      await kube.configMaps.update({
        metadata: {
          ...metadata,
          labels: { ...cm.metadata.labels, app: 'antrea' },
          ...(cm.metadata.resourceVersion === undefined ? {} : { resourceVersion: cm.metadata.resourceVersion }),
        },
        data: { ...cm.data, 'ca.crt': bundle },
      });
      this.writes++;
    }
    this.bundle = bundle;
  }

  /** Publishes `bundle`, retrying with backoff until it succeeds or `signal` aborts (then rejects). */
  async publish(bundle: string, signal: AbortSignal): Promise<void> {
    this.bundle = bundle;
    const backoff = this.o.backoff ?? new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 0.2 });
    for (;;) {
      try {
        await this.publishOnce(bundle);
        this.log.info('published the CA bundle', { configMap: `${this.o.namespace}/${this.o.configMapName}` });
        return;
      } catch (err) {
        if (signal.aborted) throw abortReason(signal);
        const delay = backoff.next();
        this.log.warn('publishing the CA bundle failed, retrying', {
          err: errorMessage(err),
          retryInMs: Math.round(delay),
        });
        await this.clock.sleep(delay, signal);
      }
    }
  }

  /** Re-publishes the last bundle every `resyncMs` until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.clock.sleep(this.o.resyncMs, signal);
      } catch {
        return;
      }
      const b = this.bundle;
      if (b === undefined) continue;
      try {
        await this.publishOnce(b);
      } catch (err) {
        this.log.warn('re-publishing the CA bundle failed', { err: errorMessage(err) });
      }
    }
  }
}
