/**
 * How antctl reaches the API it talks to (Antrea's pkg/antctl/client.go and runtime):
 *
 * - agent mode: the agent API (https://127.0.0.1:10350 or `--server`) with the loopback bearer token
 *   (`--token-file`, default /var/run/antrea/apiserver/loopback-client-token). The server is
 *   verified with the agent's CA certificate (`--ca-file`, default `ca.crt` next to the token; the
 *   certificate names only localhost, so the chain is checked, not the host name); without a CA
 *   file a loopback server is not verified (as Antrea), any other needs one or
 *   `--insecure-skip-tls-verify`.
 * - controller mode from a kubeconfig: through the Kubernetes API (API aggregation of
 *   controlplane.antrea.io and system.antrea.io), or straight to the controller with `--server`
 *   (or inside the controller's Pod, https://127.0.0.1:10349), authenticating with the kubeconfig
 *   user's bearer token and verifying the controller with ConfigMap `antrea-ca` (read through the
 *   Kubernetes API) or `--ca-file`, accepting the certificate's name `antrea.<namespace>.svc`.
 *
 * Failures are {@link AntctlError}s with a message for the user (what failed, where, what to try).
 */
import { existsSync, readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { dirname, join } from 'node:path';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  CA_CERT_FILE,
  DEFAULT_AGENT_API_DIR,
  DEFAULT_AGENT_API_PORT,
  LOOPBACK_TOKEN_FILE,
} from '../common/agent/apiserver/server.ts';
import { loadKubeConfig } from '../common/k8s/client.ts';
import { AntreaError, errorMessage } from '../common/util/errors.ts';
import type { GlobalFlags, Mode } from './args.ts';

export const DEFAULT_CONTROLLER_API_PORT = 10349;

export class AntctlError extends AntreaError<'ANTCTL_FAILED'> {
  /** The HTTP status of a server error (0 for other failures). */
  readonly status: number;
  constructor(message: string, status = 0, options: { cause?: unknown } = {}) {
    super('ANTCTL_FAILED', message, options);
    this.status = status;
  }
}

export interface Endpoint {
  /** https://host:port, no trailing slash. */
  readonly base: string;
  /** How it is reached (for messages). */
  readonly via: 'agent' | 'controller' | 'kubernetes';
  readonly headers: Readonly<Record<string, string>>;
  readonly tls: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'checkServerIdentity'>;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: Buffer;
}

/** GET `path` on `ep` (JSON accepted); rejects with an AntctlError when the server cannot be reached. */
export function httpGet(
  ep: Endpoint,
  path: string,
  timeoutMs: number,
  log?: (line: string) => void,
): Promise<HttpAnswer> {
  const url = new URL(ep.base + path);
  log?.(`GET ${url.toString()}`);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        headers: { Accept: 'application/json', ...ep.headers },
        ...ep.tls,
        ...(timeoutMs > 0 ? { timeout: timeoutMs } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          log?.(`${res.statusCode ?? 0} ${url.pathname}`);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
        });
        res.on('error', (err) => reject(unreachable(ep, err)));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(unreachable(ep, err)));
    req.end();
  });
}

function unreachable(ep: Endpoint, err: unknown): AntctlError {
  const what =
    ep.via === 'agent' ? 'the agent API' : ep.via === 'controller' ? 'antrea-controller' : 'the Kubernetes API';
  const code = (err as { code?: unknown }).code;
  const hint =
    code === 'ECONNREFUSED'
      ? ep.via === 'agent'
        ? ' (is antrea-agent running on this Node? its API listens on apiPort, 10350 by default)'
        : ' (is the server running and is the address right?)'
      : '';
  return new AntctlError(`cannot reach ${what} at ${ep.base}: ${errorMessage(err)}${hint}`, 0, { cause: err });
}

/** The message of a Kubernetes Status body, or the body itself. */
export function statusMessage(a: HttpAnswer): string {
  const text = a.body.toString('utf8');
  try {
    const o = JSON.parse(text) as { message?: unknown };
    if (typeof o.message === 'string') return o.message;
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 300);
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  503: 'ServiceUnavailable',
};

/** An AntctlError for a non-2xx answer, as kubectl words it: "Error from server (Reason): message". */
export function serverError(a: HttpAnswer): AntctlError {
  const reason = REASONS[a.status] ?? `HTTP ${a.status}`;
  return new AntctlError(`Error from server (${reason}): ${statusMessage(a)}`, a.status);
}

function isLoopback(base: string): boolean {
  const host = new URL(base).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host === '::1';
}

function readText(path: string, what: string, hint: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new AntctlError(`cannot read ${what} ${path}: ${errorMessage(err)}${hint}`, 0, { cause: err });
  }
}

/** The agent API endpoint (agent mode). */
export function agentEndpoint(flags: GlobalFlags): Endpoint {
  const base = flags.server ?? `https://127.0.0.1:${DEFAULT_AGENT_API_PORT}`;
  const tokenFile = flags.tokenFile ?? join(DEFAULT_AGENT_API_DIR, LOOPBACK_TOKEN_FILE);
  const token = readText(
    tokenFile,
    'the agent API token',
    flags.tokenFile === undefined ? ' (run antctl inside the antrea-agent Pod, or pass --token-file)' : '',
  ).trim();
  const caFile = flags.caFile ?? join(dirname(tokenFile), CA_CERT_FILE);
  let tls: Endpoint['tls'];
  if (flags.insecure) tls = { rejectUnauthorized: false };
  else if (flags.caFile !== undefined || existsSync(caFile)) {
    // The agent's certificate names localhost only: check the chain, not the name.
    tls = { ca: readText(caFile, 'the CA file', ''), rejectUnauthorized: true, checkServerIdentity: () => undefined };
  } else if (isLoopback(base)) tls = { rejectUnauthorized: false };
  else {
    throw new AntctlError(
      `no CA to verify the agent API at ${base}: pass --ca-file (the agent writes ${CA_CERT_FILE} next to its token) or --insecure-skip-tls-verify`,
    );
  }
  return { base, via: 'agent', headers: { Authorization: `Bearer ${token}` }, tls };
}

function loadKubeconfig(flags: GlobalFlags): KubeConfig {
  let kc: KubeConfig;
  try {
    kc = loadKubeConfig(flags.kubeconfig);
  } catch (err) {
    throw new AntctlError(
      `cannot load the kubeconfig${flags.kubeconfig === undefined ? '' : ` ${flags.kubeconfig}`}: ${errorMessage(err)}`,
      0,
      { cause: err },
    );
  }
  if (kc.getCurrentCluster() === null) {
    throw new AntctlError(
      'no Kubernetes cluster configured: pass -k/--kubeconfig or set KUBECONFIG (controller mode reaches antrea-controller from a kubeconfig)',
    );
  }
  return kc;
}

/** The Kubernetes API endpoint of a kubeconfig (its TLS settings and credentials). */
async function kubeEndpoint(kc: KubeConfig): Promise<Endpoint> {
  const opts: RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) if (typeof v === 'string') headers[k] = v;
  const base = (kc.getCurrentCluster()?.server ?? '').replace(/\/+$/, '');
  return {
    base,
    via: 'kubernetes',
    headers,
    tls: {
      ...(opts.ca === undefined ? {} : { ca: opts.ca }),
      ...(opts.cert === undefined ? {} : { cert: opts.cert }),
      ...(opts.key === undefined ? {} : { key: opts.key }),
      rejectUnauthorized: opts.rejectUnauthorized !== false,
    },
  };
}

/**
 * The controller endpoint (controller mode): through the Kubernetes API, or directly with
 * `--server` (or in the controller's Pod).
 */
export async function controllerEndpoint(
  flags: GlobalFlags,
  inPod: boolean,
  log?: (line: string) => void,
): Promise<Endpoint> {
  const kc = loadKubeconfig(flags);
  const kube = await kubeEndpoint(kc);
  if (flags.server === undefined && !inPod) return kube;
  const base = flags.server ?? `https://127.0.0.1:${DEFAULT_CONTROLLER_API_PORT}`;
  const auth = kube.headers['Authorization'] ?? kube.headers['authorization'];
  if (auth === undefined) {
    throw new AntctlError(
      `the kubeconfig user has no bearer token: antrea-controller at ${base} authenticates bearer tokens (TokenReview) only`,
    );
  }
  let tls: Endpoint['tls'];
  if (flags.insecure || (flags.server === undefined && inPod)) tls = { rejectUnauthorized: false };
  else {
    const ca =
      flags.caFile !== undefined
        ? readText(flags.caFile, 'the CA file', '')
        : await antreaCA(kube, flags.antreaNamespace, flags.timeoutMs, log);
    const svcName = `antrea.${flags.antreaNamespace}.svc`;
    tls = {
      ca,
      rejectUnauthorized: true,
      // The controller's certificate names its Service (and localhost, 127.0.0.1, ::1).
      checkServerIdentity: (host: string, cert: PeerCertificate) =>
        checkServerIdentity(host, cert) === undefined ? undefined : checkServerIdentity(svcName, cert),
    };
  }
  return { base, via: 'controller', headers: { Authorization: auth }, tls };
}

/** The CA bundle antrea-controller publishes in ConfigMap antrea-ca (key ca.crt). */
async function antreaCA(
  kube: Endpoint,
  namespace: string,
  timeoutMs: number,
  log?: (l: string) => void,
): Promise<string> {
  const a = await httpGet(
    kube,
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/antrea-ca`,
    timeoutMs,
    log,
  );
  if (a.status !== 200) {
    throw new AntctlError(
      `cannot read ConfigMap ${namespace}/antrea-ca (the controller's CA) to verify it: ${serverError(a).message}; pass --ca-file or --insecure-skip-tls-verify`,
      a.status,
    );
  }
  const ca = (JSON.parse(a.body.toString('utf8')) as { data?: Record<string, string> }).data?.['ca.crt'];
  if (ca === undefined || ca === '') throw new AntctlError(`ConfigMap ${namespace}/antrea-ca has no ca.crt`);
  return ca;
}

export type { Mode };
