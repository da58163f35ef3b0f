/**
 * The three patch types of the Kubernetes API, applied to plain JSON:
 * - JSON Patch (RFC 6902, `application/json-patch+json`): a failed operation is a 422.
 * - JSON Merge Patch (RFC 7386, `application/merge-patch+json`): null deletes, lists are replaced.
 * - Strategic Merge Patch (`application/strategic-merge-patch+json`): like merge patch, but lists the
 *   schema marks `patchStrategy=merge` are merged by their merge key, and the directives `$patch`,
 *   `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>` and `$retainKeys` are honoured. The
 *   schema is a small per-kind table ({@link SMP_SCHEMAS}) of the built-in kinds we serve.
 * Inputs are never modified; results are fresh values.
 */
import { ApiError, badRequest } from './status.ts';
import { clone, deepEqual, isObject, type Json, type JsonObject, deleteKey } from './types.ts';

// ---------------------------------------------------------------------------------------------
// JSON Patch

/** A JSON patch that could be decoded but not applied: the API server answers 422 Invalid. */
function patchApplyError(message: string): ApiError {
  return new ApiError(422, 'Invalid', 'the server rejected our request due to an error in our request', {
    causes: [{ reason: 'UnexpectedServerResponse', message }],
  });
}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/'))
    throw badRequest(`JSON pointer must be empty or start with a "/": ${JSON.stringify(path)}`);
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

interface Op {
  readonly op: string;
  readonly path: string;
  readonly from?: string;
  readonly value?: Json;
  readonly hasValue: boolean;
}

function decodeJsonPatch(patch: unknown): Op[] {
  if (!Array.isArray(patch)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  return patch.map((raw: unknown, i): Op => {
    if (!isObject(raw)) throw badRequest(`json patch operation ${i} is not an object`);
    const op = raw['op'];
    const path = raw['path'];
    if (typeof op !== 'string') throw badRequest(`json patch operation ${i}: missing "op"`);
    if (!['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(op)) {
      throw badRequest(`Unexpected kind: ${op}`);
    }
    if (typeof path !== 'string') throw badRequest(`json patch operation ${i} (${op}): missing "path"`);
    const from = raw['from'];
    if ((op === 'move' || op === 'copy') && typeof from !== 'string') {
      throw badRequest(`json patch operation ${i} (${op}): missing "from"`);
    }
    const hasValue = Object.hasOwn(raw, 'value');
    if ((op === 'add' || op === 'replace' || op === 'test') && !hasValue) {
      throw badRequest(`json patch operation ${i} (${op}): missing "value"`);
    }
    const out: Op = { op, path, hasValue, ...(typeof from === 'string' ? { from } : {}) };
    return hasValue ? { ...out, value: raw['value'] as Json } : out;
  });
}

type Container = JsonObject | Json[];

/** Finds the container of the last pointer token; throws with `what` when a step is missing. */
function locate(doc: Json, tokens: readonly string[], what: string): { parent: Container; key: string } {
  let cur: Json = doc;
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = tokens[i] ?? '';
    let nextVal: Json | undefined;
    if (Array.isArray(cur)) nextVal = /^\d+$/.test(t) ? cur[Number(t)] : undefined;
    else if (isObject(cur)) nextVal = cur[t];
    if (nextVal === undefined || nextVal === null || typeof nextVal !== 'object') throw patchApplyError(what);
    cur = nextVal;
  }
  if (cur === null || typeof cur !== 'object') throw patchApplyError(what);
  return { parent: cur, key: tokens[tokens.length - 1] ?? '' };
}

function getAt(parent: Container, key: string): Json | undefined {
  if (Array.isArray(parent)) return /^\d+$/.test(key) ? parent[Number(key)] : undefined;
  return Object.hasOwn(parent, key) ? parent[key] : undefined;
}

function removeAt(parent: Container, key: string): void {
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else deleteKey(parent, key);
}

function addAt(parent: Container, key: string, value: Json, what: string): void {
  if (Array.isArray(parent)) {
    if (key === '-') {
      parent.push(value);
      return;
    }
    if (!/^\d+$/.test(key) || Number(key) > parent.length) throw patchApplyError(what);
    parent.splice(Number(key), 0, value);
  } else {
    parent[key] = value;
  }
}

/** Applies an RFC 6902 JSON patch. Decode errors are 400; failed operations (and failed tests) 422. */
export function applyJsonPatch(doc: Json, patch: unknown): Json {
  const ops = decodeJsonPatch(patch);
  let root: Json = clone(doc);
  for (const o of ops) {
    const tokens = parsePointer(o.path);
    const missingPath = `${o.op} operation does not apply: doc is missing path: ${JSON.stringify(o.path)}: missing value`;
    switch (o.op) {
      case 'add': {
        if (tokens.length === 0) {
          root = clone(o.value ?? null);
          break;
        }
        const { parent, key } = locate(root, tokens, missingPath);
        addAt(parent, key, clone(o.value ?? null), missingPath);
        break;
      }
      case 'remove': {
        const { parent, key } = locate(root, tokens, missingPath);
        if (getAt(parent, key) === undefined) throw patchApplyError(missingPath);
        removeAt(parent, key);
        break;
      }
      case 'replace': {
        if (tokens.length === 0) {
          root = clone(o.value ?? null);
          break;
        }
        const msg = `replace operation does not apply: doc is missing key: ${o.path}: missing value`;
        const { parent, key } = locate(root, tokens, msg);
        if (getAt(parent, key) === undefined) throw patchApplyError(msg);
        if (Array.isArray(parent)) parent[Number(key)] = clone(o.value ?? null);
        else parent[key] = clone(o.value ?? null);
        break;
      }
      case 'move':
      case 'copy': {
        const fromTokens = parsePointer(o.from ?? '');
        const msg = `${o.op} operation does not apply: doc is missing from path: ${JSON.stringify(o.from)}: missing value`;
        const src = locate(root, fromTokens, msg);
        const value = getAt(src.parent, src.key);
        if (value === undefined) throw patchApplyError(msg);
        if (o.op === 'move') {
          if (o.path.startsWith(`${o.from ?? ''}/`))
            throw patchApplyError(`move operation: "from" is a prefix of "path"`);
          removeAt(src.parent, src.key);
        }
        const dst = locate(root, tokens, missingPath);
        addAt(dst.parent, dst.key, o.op === 'copy' ? clone(value) : value, missingPath);
        break;
      }
      case 'test': {
        let actual: Json | undefined;
        if (tokens.length === 0) actual = root;
        else {
          try {
            const { parent, key } = locate(root, tokens, '');
            actual = getAt(parent, key);
          } catch {
            actual = undefined;
          }
        }
        if (!deepEqual(actual ?? null, o.value ?? null) || (actual === undefined && o.value !== null)) {
          throw patchApplyError(`testing value ${o.path} failed: test failed`);
        }
        break;
      }
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// JSON Merge Patch

/** Applies an RFC 7386 merge patch: objects merge recursively, null deletes, anything else replaces. */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (v === null) deleteKey(out, k);
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Strategic Merge Patch

/** The strategic-merge schema of one field: its known children and how its list merges. */
export interface SmpNode {
  /** Known object fields. */
  readonly fields?: Readonly<Record<string, SmpNode>>;
  /** Schema of list items (for lists) or of map values (for maps with arbitrary keys). */
  readonly items?: SmpNode;
  /** `patchStrategy=merge`: lists of maps merge by `key`; without a key, a set of primitives. */
  readonly merge?: { readonly key?: string };
}

const obj = (fields: Record<string, SmpNode>): SmpNode => ({ fields });
const mergeBy = (key: string, items?: SmpNode): SmpNode => ({ merge: { key }, ...(items ? { items } : {}) });
const primitiveSet: SmpNode = { merge: {} };

const metadata = obj({ finalizers: primitiveSet, ownerReferences: mergeBy('uid') });
const conditionsStatus = obj({ conditions: mergeBy('type') });
const container = obj({
  ports: mergeBy('containerPort'),
  env: mergeBy('name'),
  volumeMounts: mergeBy('mountPath'),
  volumeDevices: mergeBy('devicePath'),
});
const podSpec = obj({
  containers: mergeBy('name', container),
  initContainers: mergeBy('name', container),
  ephemeralContainers: mergeBy('name', container),
  volumes: mergeBy('name'),
  imagePullSecrets: mergeBy('name'),
  hostAliases: mergeBy('ip'),
  topologySpreadConstraints: mergeBy('topologyKey'),
  resourceClaims: mergeBy('name'),
  schedulingGates: mergeBy('name'),
});

/**
 * The merge keys of the built-in kinds we serve (kubernetes/api `patchStrategy`/`patchMergeKey`
 * tags). Lists not named here are atomic (replaced). Keyed by `group/Kind` (`/Pod` for core).
 */
export const SMP_SCHEMAS: Readonly<Record<string, SmpNode>> = {
  '/Pod': obj({
    metadata,
    spec: podSpec,
    status: obj({ conditions: mergeBy('type'), podIPs: mergeBy('ip'), hostIPs: mergeBy('ip') }),
  }),
  '/Service': obj({ metadata, spec: obj({ ports: mergeBy('port') }), status: conditionsStatus }),
  '/Node': obj({
    metadata,
    spec: obj({ podCIDRs: primitiveSet }),
    status: obj({ addresses: mergeBy('type'), conditions: mergeBy('type') }),
  }),
  '/Namespace': obj({ metadata, status: conditionsStatus }),
  '/ServiceAccount': obj({ metadata, secrets: mergeBy('name') }),
  '/ConfigMap': obj({ metadata }),
  '/Secret': obj({ metadata }),
  '/Event': obj({ metadata }),
  'discovery.k8s.io/EndpointSlice': obj({ metadata }),
  'coordination.k8s.io/Lease': obj({ metadata }),
  'networking.k8s.io/NetworkPolicy': obj({ metadata, status: conditionsStatus }),
  'rbac.authorization.k8s.io/Role': obj({ metadata }),
  'rbac.authorization.k8s.io/ClusterRole': obj({ metadata }),
  'rbac.authorization.k8s.io/RoleBinding': obj({ metadata }),
  'rbac.authorization.k8s.io/ClusterRoleBinding': obj({ metadata }),
  'apiextensions.k8s.io/CustomResourceDefinition': obj({ metadata }),
};

const SET_ORDER = '$setElementOrder/';
const DELETE_FROM = '$deleteFromPrimitiveList/';

function childSchema(schema: SmpNode | undefined, key: string): SmpNode | undefined {
  if (schema === undefined) return undefined;
  return schema.fields?.[key] ?? (schema.fields === undefined ? schema.items : undefined);
}

/** Applies a strategic merge patch to `original` using the kind's schema (undefined = no merge lists). */
export function applyStrategicMergePatch(original: Json, patch: Json, schema: SmpNode | undefined): Json {
  if (!isObject(patch)) throw badRequest('strategic merge patch must be a JSON object');
  const merged = mergeMap(isObject(original) ? original : undefined, patch, schema);
  return merged ?? {};
}

/** Merges a patch map into an original map. Returns undefined when the patch deletes the map. */
function mergeMap(
  original: JsonObject | undefined,
  patch: JsonObject,
  schema: SmpNode | undefined,
): JsonObject | undefined {
  const directive = patch['$patch'];
  if (directive !== undefined) {
    if (directive === 'delete') return undefined;
    if (directive === 'replace') return mergeMap(undefined, withoutKey(patch, '$patch'), schema);
    if (directive !== 'merge')
      throw badRequest(`Unknown patch type: ${JSON.stringify(directive)} in map: ${JSON.stringify(patch)}`);
  }
  const out: JsonObject = original === undefined ? {} : { ...original };
  const retain = patch['$retainKeys'];
  if (retain !== undefined) {
    if (!Array.isArray(retain) || !retain.every((k) => typeof k === 'string')) {
      throw badRequest('invalid patch: $retainKeys must be a list of strings');
    }
    for (const k of Object.keys(out)) if (!retain.includes(k)) deleteKey(out, k);
  }
  // Deletions from primitive lists come first, then ordinary fields, then element order.
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(DELETE_FROM)) continue;
    const field = k.slice(DELETE_FROM.length);
    if (!Array.isArray(v)) throw badRequest(`invalid patch: ${k} must be a list`);
    const cur = out[field];
    if (Array.isArray(cur)) out[field] = cur.filter((x) => !v.some((d) => deepEqual(d, x)));
  }
  for (const [k, v] of Object.entries(patch)) {
    if (
      v === undefined ||
      k === '$patch' ||
      k === '$retainKeys' ||
      k.startsWith(DELETE_FROM) ||
      k.startsWith(SET_ORDER)
    )
      continue;
    if (k.startsWith('$')) throw badRequest(`Unknown patch directive: ${k}`);
    const fieldSchema = childSchema(schema, k);
    if (v === null) {
      deleteKey(out, k);
    } else if (isObject(v)) {
      const cur = out[k];
      const m = mergeMap(isObject(cur) ? cur : undefined, v, fieldSchema);
      if (m === undefined) deleteKey(out, k);
      else out[k] = m;
    } else if (Array.isArray(v)) {
      out[k] = mergeList(out[k], v, fieldSchema, k);
    } else {
      out[k] = v;
    }
  }
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(SET_ORDER)) continue;
    const field = k.slice(SET_ORDER.length);
    if (!Array.isArray(v)) throw badRequest(`invalid patch: ${k} must be a list`);
    const cur = out[field];
    if (Array.isArray(cur)) {
      const fieldSchema = childSchema(schema, field);
      out[field] = applyElementOrder(cur, v, original?.[field], fieldSchema?.merge?.key);
    }
  }
  return out;
}

function withoutKey(o: JsonObject, key: string): JsonObject {
  const out = { ...o };
  deleteKey(out, key);
  return out;
}

/** Strips directives from a value being inserted as new content. */
function fresh(v: Json, schema: SmpNode | undefined): Json {
  if (isObject(v)) return mergeMap(undefined, v, schema) ?? {};
  if (Array.isArray(v)) return v.map((x) => fresh(x, schema?.items));
  return v;
}

function mergeList(original: Json | undefined, patch: Json[], schema: SmpNode | undefined, field: string): Json[] {
  const items = schema?.items;
  if (schema?.merge === undefined) return patch.map((x) => fresh(x, items));
  const key = schema.merge.key;
  const base = Array.isArray(original) ? original : [];
  if (key === undefined) {
    const out = [...base];
    for (const p of patch) {
      if (isObject(p) || Array.isArray(p)) throw badRequest(`invalid patch: ${field} is a list of primitives`);
      if (!out.some((x) => deepEqual(x, p))) out.push(p);
    }
    return out;
  }
  if (patch.some((p) => isObject(p) && p['$patch'] === 'replace')) {
    return patch.filter((p) => !(isObject(p) && p['$patch'] === 'replace')).map((p) => fresh(p, items));
  }
  const out: Json[] = [...base];
  for (const p of patch) {
    if (!isObject(p)) throw badRequest(`invalid patch: ${field}: list items must be maps with the merge key "${key}"`);
    if (!Object.hasOwn(p, key))
      throw badRequest(`map: ${JSON.stringify(p)} does not contain declared merge key: ${key}`);
    const kv = p[key];
    const idx = out.findIndex((x) => isObject(x) && deepEqual(x[key], kv));
    if (p['$patch'] === 'delete') {
      for (let i = out.length - 1; i >= 0; i--) {
        const x = out[i];
        if (isObject(x) && deepEqual(x[key], kv)) out.splice(i, 1);
      }
      continue;
    }
    if (idx >= 0) {
      const cur = out[idx];
      const m = mergeMap(isObject(cur) ? cur : undefined, p, items);
      if (m === undefined) out.splice(idx, 1);
      else out[idx] = m;
    } else {
      const m = mergeMap(undefined, p, items);
      if (m !== undefined) out.push(m);
    }
  }
  return out;
}

/**
 * Orders a merged list by `$setElementOrder`: elements named in `order` come in that order; elements
 * only the server had keep their position relative to the others (by their index in the server's list).
 */
function applyElementOrder(
  merged: Json[],
  order: Json[],
  serverList: Json | undefined,
  key: string | undefined,
): Json[] {
  const idOf = (x: Json): Json | undefined => (key === undefined ? x : isObject(x) ? x[key] : undefined);
  const orderIds = order.map((o) => (key === undefined ? o : isObject(o) ? o[key] : undefined));
  const indexIn = (list: readonly (Json | undefined)[], id: Json | undefined): number =>
    list.findIndex((x) => deepEqual(x, id));
  const serverIds = Array.isArray(serverList) ? serverList.map(idOf) : [];
  const inOrder = merged
    .filter((x) => indexIn(orderIds, idOf(x)) >= 0)
    .sort((a, b) => indexIn(orderIds, idOf(a)) - indexIn(orderIds, idOf(b)));
  const serverOnly = merged.filter((x) => indexIn(orderIds, idOf(x)) < 0);
  const out: Json[] = [];
  let i = 0;
  let j = 0;
  while (i < inOrder.length || j < serverOnly.length) {
    const left = inOrder[i];
    const right = serverOnly[j];
    if (left === undefined) {
      out.push(right as Json);
      j++;
      continue;
    }
    if (right === undefined) {
      out.push(left);
      i++;
      continue;
    }
    const li = indexIn(serverIds, idOf(left));
    const ri = indexIn(serverIds, idOf(right));
    if (li >= 0 && ri >= 0 && ri < li) {
      out.push(right);
      j++;
    } else {
      out.push(left);
      i++;
    }
  }
  return out;
}
