/**
 * HTTPS access from an agent to antrea-controller's API: TLS verified against the CA bundle the
 * controller publishes (ConfigMap `antrea-ca`), and the agent's ServiceAccount token as bearer
 * token. Both are functions called at every connection, so a rotated CA or a refreshed projected
 * token is picked up without restarting anything.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { AntreaError, errorMessage } from '../../util/errors.ts';

/** Where the controller is and how to authenticate to it. */
export interface ControllerEndpoint {
  /** `https://host:port` of the controller's API (port 10349). */
  readonly url: string;
  /** The CA bundle (PEM) that verifies the controller; called at each connection. */
  readonly ca: () => string | Promise<string>;
  /** The bearer token; called at each connection. */
  readonly token: () => string | Promise<string>;
  /**
   * The name the controller's certificate must carry (default: the URL's host, or
   * `antrea.kube-system.svc` when the host is an IP address, as Antrea's agent does).
   */
  readonly serverName?: string;
}

/** A token read from a file at each use (projected ServiceAccount tokens are rotated in place). */
export function tokenFromFile(path: string): () => Promise<string> {
  return async () => (await readFile(path, 'utf8')).trim();
}

/** An HTTP error answer of the controller, with its Status message. */
export class ControllerHttpError extends AntreaError<'CONTROLLER_HTTP_ERROR'> {
  readonly status: number;

  constructor(status: number, message: string) {
    super('CONTROLLER_HTTP_ERROR', message, { details: { status } });
    this.status = status;
  }
}

/** The controller could not be reached (connection, TLS or timeout). */
export class ControllerUnreachableError extends AntreaError<'CONTROLLER_UNREACHABLE'> {
  constructor(message: string, cause: unknown) {
    super('CONTROLLER_UNREACHABLE', message, { cause });
  }
}

export interface RequestOptions {
  readonly method?: string;
  /** Path and query, e.g. `/apis/controlplane.antrea.io/v1beta2/networkpolicies?watch=true`. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  readonly signal?: AbortSignal;
  /** Time allowed until the response headers arrive (default 30 s). */
  readonly timeoutMs?: number;
}

function serverNameOf(endpoint: ControllerEndpoint, host: string): string | undefined {
  if (endpoint.serverName !== undefined) {
    // SNI cannot carry an IP address (RFC 6066); the certificate is then checked against the IP.
    return isIP(endpoint.serverName) === 0 ? endpoint.serverName : undefined;
  }
  const bare = host.replace(/^\[|\]$/g, '');
  return isIP(bare) === 0 ? bare : 'antrea.kube-system.svc';
}

/**
 * Sends a request and resolves with the response once its headers arrived (the body is still to
 * be read). Rejects with a ControllerUnreachableError on connection, TLS or timeout problems.
 */
export async function openRequest(endpoint: ControllerEndpoint, o: RequestOptions): Promise<IncomingMessage> {
  const url = new URL(o.path, endpoint.url);
  const [ca, token] = await Promise.all([endpoint.ca(), endpoint.token()]);
  const servername = serverNameOf(endpoint, url.hostname);
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, {
      method: o.method ?? 'GET',
      ca,
      ...(servername === undefined ? {} : { servername }),
      headers: {
        ...(token === '' ? {} : { Authorization: `Bearer ${token}` }),
        ...(o.body === undefined ? {} : { 'Content-Length': String(o.body.length) }),
        ...o.headers,
      },
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer within ${o.timeoutMs ?? 30_000} ms`)),
      o.timeoutMs ?? 30_000,
    );
    req.on('response', (res) => {
      clearTimeout(timer);
      res.socket.setKeepAlive(true, 30_000);
      resolve(res);
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(new ControllerUnreachableError(`${o.method ?? 'GET'} ${url.pathname}: ${errorMessage(err)}`, err));
    });
    req.end(o.body);
  });
}

/** Reads a whole response body (bounded). */
export async function readBody(res: IncomingMessage, maxBytes = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > maxBytes) {
      res.destroy();
      throw new ControllerHttpError(res.statusCode ?? 0, `response larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Throws a ControllerHttpError for a non-2xx response (consuming its body for the message). */
export async function checkResponse(res: IncomingMessage, what: string): Promise<void> {
  const code = res.statusCode ?? 0;
  if (code >= 200 && code < 300) return;
  let message = '';
  try {
    const body = (await readBody(res, 64 * 1024)).toString('utf8');
    try {
      const st = JSON.parse(body) as { message?: unknown };
      message = typeof st.message === 'string' ? st.message : body;
    } catch {
      message = body;
    }
  } catch {
    // The message is best effort.
  }
  throw new ControllerHttpError(
    code,
    `${what}: HTTP ${code}${message === '' ? '' : `: ${message.trim().slice(0, 500)}`}`,
  );
}

/** Sends a request and returns the status and the body (errors as ControllerHttpError). */
export async function controllerRequest(
  endpoint: ControllerEndpoint,
  o: RequestOptions,
): Promise<{ status: number; body: Buffer; contentType: string }> {
  const res = await openRequest(endpoint, o);
  await checkResponse(res, `${o.method ?? 'GET'} ${o.path.split('?')[0] ?? ''}`);
  return { status: res.statusCode ?? 0, body: await readBody(res), contentType: res.headers['content-type'] ?? '' };
}
