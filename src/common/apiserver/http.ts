/**
 * What the HTTPS API servers (antrea-controller's on 10349, the agent's on 10350) share: errors
 * answered as Kubernetes Status objects, JSON and text answers, the bearer token of a request and
 * the health check page (`/healthz`, `/livez`, `/readyz`, with `?verbose`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AntreaError } from '../util/errors.ts';

/** An error answered as a Kubernetes Status. */
export class HttpError extends AntreaError<'HTTP_ERROR'> {
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, message: string) {
    super('HTTP_ERROR', message, { details: { status, reason } });
    this.status = status;
    this.reason = reason;
  }
}

export const notFound = (what: string): HttpError => new HttpError(404, 'NotFound', what);
export const forbidden = (message: string): HttpError => new HttpError(403, 'Forbidden', message);

/** A failure Status object (kind Status, apiVersion v1). */
export function statusBody(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = Buffer.from(JSON.stringify(body) + '\n');
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length });
  res.end(data);
}

export function sendText(res: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
  const data = Buffer.from(text);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': data.length });
  res.end(data);
}

/** The bearer token of a request; a 401 HttpError when there is none. */
export function bearerToken(req: IncomingMessage): string {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (m === null) throw new HttpError(401, 'Unauthorized', 'Unauthorized: a bearer token is required');
  return m[1] ?? '';
}

/** Throws a 405 (with an Allow header) unless the request's method is one of `methods`. */
export function requireMethod(req: IncomingMessage, res: ServerResponse, path: string, ...methods: string[]): void {
  const method = req.method ?? 'GET';
  if (methods.includes(method)) return;
  res.setHeader('Allow', methods.join(', '));
  throw new HttpError(405, 'MethodNotAllowed', `${method} is not allowed on ${path} (allowed: ${methods.join(', ')})`);
}

/**
 * Answers a health check page as the Kubernetes API servers do: `ok` (200) when every check passes,
 * else (or with `verbose`) one `[+]name ok` / `[-]name failed` line per check and a summary (500 on
 * failure).
 */
export function sendHealth(
  res: ServerResponse,
  name: string,
  checks: Readonly<Record<string, boolean>>,
  verbose: boolean,
): void {
  const ok = Object.values(checks).every((v) => v);
  const lines = Object.entries(checks).map(([k, v]) => (v ? `[+]${k} ok` : `[-]${k} failed`));
  const text = verbose || !ok ? `${lines.join('\n')}\n${name} check ${ok ? 'passed' : 'failed'}\n` : 'ok';
  sendText(res, ok ? 200 : 500, text);
}
