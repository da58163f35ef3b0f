/**
 * Kubernetes API errors. Every failure the API server reports is an {@link ApiError}, which renders as
 * a `Status` object with the HTTP code, reason, message and details a real kube-apiserver would send
 * (apimachinery `pkg/api/errors`). Field errors ({@link FieldError}) become the `causes` of a 422.
 */
import { AntreaError } from '../../common/util/errors.ts';
import type { JsonObject } from './types.ts';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'Invalid'
  | 'TooManyRequests'
  | 'InternalError'
  | 'Timeout'
  | 'ServiceUnavailable';

export interface StatusCause {
  readonly reason?: string;
  readonly message: string;
  readonly field?: string;
}

export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
  readonly causes?: readonly StatusCause[];
  readonly retryAfterSeconds?: number;
}

/** What the error refers to: the API group and the resource (plural) or kind. */
export interface Qualified {
  readonly group: string;
  readonly resource: string;
}

export class ApiError extends AntreaError<`K8S_${StatusReason}`> {
  readonly httpCode: number;
  readonly reason: StatusReason;
  readonly statusDetails: StatusDetails | undefined;

  constructor(httpCode: number, reason: StatusReason, message: string, details?: StatusDetails) {
    super(`K8S_${reason}`, message, details === undefined ? {} : { details: { ...details } });
    this.httpCode = httpCode;
    this.reason = reason;
    this.statusDetails = details;
  }

  /** The `Status` object sent on the wire. */
  toStatus(): JsonObject {
    const out: JsonObject = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
    };
    if (this.statusDetails !== undefined) {
      const d: JsonObject = {};
      if (this.statusDetails.name !== undefined && this.statusDetails.name !== '') d['name'] = this.statusDetails.name;
      if (this.statusDetails.group !== undefined && this.statusDetails.group !== '')
        d['group'] = this.statusDetails.group;
      if (this.statusDetails.kind !== undefined && this.statusDetails.kind !== '') d['kind'] = this.statusDetails.kind;
      if (this.statusDetails.causes !== undefined && this.statusDetails.causes.length > 0) {
        d['causes'] = this.statusDetails.causes.map((c) => {
          const cause: JsonObject = {};
          if (c.reason !== undefined) cause['reason'] = c.reason;
          cause['message'] = c.message;
          if (c.field !== undefined) cause['field'] = c.field;
          return cause;
        });
      }
      if (this.statusDetails.retryAfterSeconds !== undefined)
        d['retryAfterSeconds'] = this.statusDetails.retryAfterSeconds;
      out['details'] = d;
    }
    out['code'] = this.httpCode;
    return out;
  }
}

/** `pods "web"` or `networkpolicies.networking.k8s.io "web"`, as Kubernetes names a resource. */
export function qualifiedName(q: Qualified): string {
  return q.group === '' ? q.resource : `${q.resource}.${q.group}`;
}

export function badRequest(message: string, causes?: readonly StatusCause[]): ApiError {
  return new ApiError(400, 'BadRequest', message, causes === undefined ? undefined : { causes });
}

export function unauthorized(message = 'Unauthorized'): ApiError {
  return new ApiError(401, 'Unauthorized', message);
}

export function forbidden(q: Qualified, name: string, why: string): ApiError {
  const what = name === '' ? qualifiedName(q) : `${qualifiedName(q)} "${name}"`;
  return new ApiError(403, 'Forbidden', `${what} is forbidden: ${why}`, {
    name,
    group: q.group,
    kind: q.resource,
  });
}

export function notFound(q: Qualified, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualifiedName(q)} "${name}" not found`, {
    name,
    group: q.group,
    kind: q.resource,
  });
}

/** The 404 for a path that names no resource at all. */
export function pathNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function alreadyExists(q: Qualified, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualifiedName(q)} "${name}" already exists`, {
    name,
    group: q.group,
    kind: q.resource,
  });
}

export function conflict(q: Qualified, name: string, why: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedName(q)} "${name}": ${why}`, {
    name,
    group: q.group,
    kind: q.resource,
  });
}

export const STALE_OBJECT_MESSAGE =
  'the object has been modified; please apply your changes to the latest version and try again';

export function methodNotAllowed(what: string): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    `the server does not allow this method on the requested resource${what}`,
  );
}

export function gone(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

export function tooLarge(message: string): ApiError {
  return new ApiError(413, 'RequestEntityTooLarge', message);
}

export function unsupportedMediaType(contentType: string, supported: readonly string[]): ApiError {
  return new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${supported.join(', ')}`,
    { causes: [{ reason: 'UnsupportedMediaType', message: contentType === '' ? 'no content type' : contentType }] },
  );
}

export function notAcceptable(supported: readonly string[]): ApiError {
  return new ApiError(406, 'NotAcceptable', `only the following media types are accepted: ${supported.join(', ')}`);
}

export function internalError(message: string): ApiError {
  return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, {
    causes: [{ message }],
  });
}

export function timeoutError(message: string, retryAfterSeconds?: number): ApiError {
  return new ApiError(504, 'Timeout', message, retryAfterSeconds === undefined ? undefined : { retryAfterSeconds });
}

/** One field error, as apimachinery's field.Error renders it. */
export interface FieldError {
  readonly type:
    | 'FieldValueRequired'
    | 'FieldValueInvalid'
    | 'FieldValueNotSupported'
    | 'FieldValueForbidden'
    | 'FieldValueDuplicate'
    | 'FieldValueTooLong'
    | 'FieldValueTooMany'
    | 'FieldValueTypeInvalid';
  readonly field: string;
  /** The body after the field path, for example `Required value` or `Invalid value: 3: must be ...`. */
  readonly body: string;
}

function renderValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === undefined || v === null) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v))
    return `[]${typeof v[0] === 'string' ? 'string' : 'interface {}'}{${v.map(renderValue).join(', ')}}`;
  return '"object"';
}

export const fieldErr = {
  required(field: string, detail = ''): FieldError {
    return { type: 'FieldValueRequired', field, body: detail === '' ? 'Required value' : `Required value: ${detail}` };
  },
  invalid(field: string, value: unknown, detail: string): FieldError {
    return { type: 'FieldValueInvalid', field, body: `Invalid value: ${renderValue(value)}: ${detail}` };
  },
  notSupported(field: string, value: unknown, supported: readonly string[]): FieldError {
    const list = supported.map((s) => JSON.stringify(s)).join(', ');
    return {
      type: 'FieldValueNotSupported',
      field,
      body: `Unsupported value: ${renderValue(value)}${supported.length > 0 ? `: supported values: ${list}` : ''}`,
    };
  },
  forbidden(field: string, detail: string): FieldError {
    return { type: 'FieldValueForbidden', field, body: `Forbidden: ${detail}` };
  },
  duplicate(field: string, value: unknown): FieldError {
    return { type: 'FieldValueDuplicate', field, body: `Duplicate value: ${renderValue(value)}` };
  },
  tooLong(field: string, max: number): FieldError {
    return { type: 'FieldValueTooLong', field, body: `Too long: may not be more than ${max} bytes` };
  },
  typeInvalid(field: string, value: unknown, detail: string): FieldError {
    return { type: 'FieldValueTypeInvalid', field, body: `Invalid value: ${renderValue(value)}: ${detail}` };
  },
};

/**
 * The 422 for failed validation: `Pod "web" is invalid: spec.containers: Required value`, with one
 * cause per field error. `kindGroup` is the kind qualified by its group (`Tier.crd.antrea.io`).
 */
export function invalid(kind: string, group: string, name: string, errs: readonly FieldError[]): ApiError {
  const qualified = group === '' ? kind : `${kind}.${group}`;
  const rendered = errs.map((e) => `${e.field}: ${e.body}`);
  const summary = rendered.length === 1 ? (rendered[0] ?? '') : `[${rendered.join(', ')}]`;
  return new ApiError(422, 'Invalid', `${qualified} "${name}" is invalid: ${summary}`, {
    name,
    group,
    kind,
    causes: errs.map((e) => ({ reason: e.type, message: e.body, field: e.field })),
  });
}

/** Maps any thrown value to an ApiError (unknown failures become 500 InternalError). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof Error) return internalError(err.message);
  return internalError(String(err));
}
