/**
 * Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), which
 * kubectl's typed clients send since 1.32 for imperative commands (`create namespace`,
 * `create configmap`, `create token`, `auth can-i`, ...). A body is the magic `k8s\0` followed by a
 * runtime.Unknown whose `raw` is the object in the type's generated.proto encoding. Each supported
 * kind has a small table of field numbers; a field the table does not know makes the request fail
 * with 415 rather than losing data silently. Responses stay JSON (clients also accept it).
 */
import { badRequest, unsupportedMediaType } from './status.ts';
import { deleteKey, scalarString, type Json, type JsonObject } from './types.ts';

/**
 * `int0`/`bool0` are non-pointer fields (Go encodes their zero value, JSON omits it); strings and times are
 * also dropped when empty, as JSON's omitempty would.
 */
type Scalar = 'string' | 'bytes' | 'int' | 'int0' | 'bool' | 'bool0' | 'time' | 'intOrString' | 'quantity';
type FieldType = Scalar | Msg | { map: 'string' | 'bytes' | Msg } | { repeated: Scalar | Msg };

interface Msg {
  readonly fields: Readonly<Record<number, readonly [string, FieldType]>>;
  /** Skip fields this table does not know (for parts the server ignores, like a create's status). */
  readonly lenient?: boolean;
}

const m = (fields: Record<number, readonly [string, FieldType]>): Msg => ({ fields });

/** A status (or other server-owned part) a write ignores: its content is skipped. */
const ignored: Msg = { fields: {}, lenient: true };

const ownerReference = m({
  1: ['kind', 'string'],
  3: ['name', 'string'],
  4: ['uid', 'string'],
  5: ['apiVersion', 'string'],
  6: ['controller', 'bool'],
  7: ['blockOwnerDeletion', 'bool'],
});
const objectMeta = m({
  1: ['name', 'string'],
  2: ['generateName', 'string'],
  3: ['namespace', 'string'],
  4: ['selfLink', 'string'],
  5: ['uid', 'string'],
  6: ['resourceVersion', 'string'],
  7: ['generation', 'int0'],
  8: ['creationTimestamp', 'time'],
  9: ['deletionTimestamp', 'time'],
  10: ['deletionGracePeriodSeconds', 'int'],
  11: ['labels', { map: 'string' }],
  12: ['annotations', { map: 'string' }],
  13: ['ownerReferences', { repeated: ownerReference }],
  14: ['finalizers', { repeated: 'string' }],
  17: ['managedFields', { repeated: ignored }],
});
const objectReference = m({
  1: ['kind', 'string'],
  2: ['namespace', 'string'],
  3: ['name', 'string'],
  4: ['uid', 'string'],
  5: ['apiVersion', 'string'],
  6: ['resourceVersion', 'string'],
  7: ['fieldPath', 'string'],
});
const localObjectReference = m({ 1: ['name', 'string'] });
const labelSelector = m({
  1: ['matchLabels', { map: 'string' }],
  2: [
    'matchExpressions',
    { repeated: m({ 1: ['key', 'string'], 2: ['operator', 'string'], 3: ['values', { repeated: 'string' }] }) },
  ],
});
const policyRule = m({
  1: ['verbs', { repeated: 'string' }],
  2: ['apiGroups', { repeated: 'string' }],
  3: ['resources', { repeated: 'string' }],
  4: ['resourceNames', { repeated: 'string' }],
  5: ['nonResourceURLs', { repeated: 'string' }],
});
const subject = m({
  1: ['kind', 'string'],
  2: ['apiGroup', 'string'],
  3: ['name', 'string'],
  4: ['namespace', 'string'],
});
const roleRef = m({ 1: ['apiGroup', 'string'], 2: ['kind', 'string'], 3: ['name', 'string'] });
const servicePort = m({
  1: ['name', 'string'],
  2: ['protocol', 'string'],
  3: ['port', 'int0'],
  4: ['targetPort', 'intOrString'],
  5: ['nodePort', 'int0'],
  6: ['appProtocol', 'string'],
});
const serviceSpec = m({
  1: ['ports', { repeated: servicePort }],
  2: ['selector', { map: 'string' }],
  3: ['clusterIP', 'string'],
  4: ['type', 'string'],
  5: ['externalIPs', { repeated: 'string' }],
  7: ['sessionAffinity', 'string'],
  8: ['loadBalancerIP', 'string'],
  9: ['loadBalancerSourceRanges', { repeated: 'string' }],
  10: ['externalName', 'string'],
  11: ['externalTrafficPolicy', 'string'],
  12: ['healthCheckNodePort', 'int0'],
  13: ['publishNotReadyAddresses', 'bool0'],
  17: ['ipFamilyPolicy', 'string'],
  18: ['clusterIPs', { repeated: 'string' }],
  19: ['ipFamilies', { repeated: 'string' }],
  20: ['allocateLoadBalancerNodePorts', 'bool'],
  21: ['loadBalancerClass', 'string'],
  22: ['internalTrafficPolicy', 'string'],
});
const resourceAttributes = m({
  1: ['namespace', 'string'],
  2: ['verb', 'string'],
  3: ['group', 'string'],
  4: ['version', 'string'],
  5: ['resource', 'string'],
  6: ['subresource', 'string'],
  7: ['name', 'string'],
});
const nonResourceAttributes = m({ 1: ['path', 'string'], 2: ['verb', 'string'] });

/** Message schemas by `group/version/Kind` (core group: `/v1/Kind`). */
const KINDS: Readonly<Record<string, Msg>> = {
  '/v1/Namespace': m({
    1: ['metadata', objectMeta],
    2: ['spec', m({ 1: ['finalizers', { repeated: 'string' }] })],
    3: ['status', ignored],
  }),
  '/v1/ConfigMap': m({
    1: ['metadata', objectMeta],
    2: ['data', { map: 'string' }],
    3: ['binaryData', { map: 'bytes' }],
    4: ['immutable', 'bool'],
  }),
  '/v1/Secret': m({
    1: ['metadata', objectMeta],
    2: ['data', { map: 'bytes' }],
    3: ['type', 'string'],
    4: ['stringData', { map: 'string' }],
    5: ['immutable', 'bool'],
  }),
  '/v1/ServiceAccount': m({
    1: ['metadata', objectMeta],
    2: ['secrets', { repeated: objectReference }],
    3: ['imagePullSecrets', { repeated: localObjectReference }],
    4: ['automountServiceAccountToken', 'bool'],
  }),
  '/v1/Service': m({ 1: ['metadata', objectMeta], 2: ['spec', serviceSpec], 3: ['status', ignored] }),
  'rbac.authorization.k8s.io/v1/Role': m({ 1: ['metadata', objectMeta], 2: ['rules', { repeated: policyRule }] }),
  'rbac.authorization.k8s.io/v1/ClusterRole': m({
    1: ['metadata', objectMeta],
    2: ['rules', { repeated: policyRule }],
    3: ['aggregationRule', m({ 1: ['clusterRoleSelectors', { repeated: labelSelector }] })],
  }),
  'rbac.authorization.k8s.io/v1/RoleBinding': m({
    1: ['metadata', objectMeta],
    2: ['subjects', { repeated: subject }],
    3: ['roleRef', roleRef],
  }),
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': m({
    1: ['metadata', objectMeta],
    2: ['subjects', { repeated: subject }],
    3: ['roleRef', roleRef],
  }),
  'authentication.k8s.io/v1/TokenRequest': m({
    1: ['metadata', objectMeta],
    2: [
      'spec',
      m({
        1: ['audiences', { repeated: 'string' }],
        3: [
          'boundObjectRef',
          m({ 1: ['kind', 'string'], 2: ['apiVersion', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'] }),
        ],
        4: ['expirationSeconds', 'int'],
      }),
    ],
    3: ['status', ignored],
  }),
  'authentication.k8s.io/v1/TokenReview': m({
    1: ['metadata', objectMeta],
    2: ['spec', m({ 1: ['token', 'string'], 2: ['audiences', { repeated: 'string' }] })],
    3: ['status', ignored],
  }),
  'authentication.k8s.io/v1/SelfSubjectReview': m({ 1: ['metadata', objectMeta], 2: ['status', ignored] }),
  'authorization.k8s.io/v1/SelfSubjectAccessReview': m({
    1: ['metadata', objectMeta],
    2: [
      'spec',
      m({ 1: ['resourceAttributes', resourceAttributes], 2: ['nonResourceAttributes', nonResourceAttributes] }),
    ],
    3: ['status', ignored],
  }),
  'authorization.k8s.io/v1/SelfSubjectRulesReview': m({
    1: ['metadata', objectMeta],
    2: ['spec', m({ 1: ['namespace', 'string'] })],
    3: ['status', ignored],
  }),
  'authorization.k8s.io/v1/SubjectAccessReview': m({
    1: ['metadata', objectMeta],
    2: [
      'spec',
      m({
        1: ['resourceAttributes', resourceAttributes],
        2: ['nonResourceAttributes', nonResourceAttributes],
        3: ['user', 'string'],
        4: ['groups', { repeated: 'string' }],
        5: ['extra', { map: m({ 1: ['items', { repeated: 'string' }] }) }],
        6: ['uid', 'string'],
      }),
    ],
    3: ['status', ignored],
  }),
  'meta.k8s.io/v1/DeleteOptions': m({
    1: ['gracePeriodSeconds', 'int'],
    2: ['preconditions', m({ 1: ['uid', 'string'], 2: ['resourceVersion', 'string'] })],
    3: ['orphanDependents', 'bool'],
    4: ['propagationPolicy', 'string'],
    5: ['dryRun', { repeated: 'string' }],
  }),
};

const UNKNOWN = m({
  1: ['typeMeta', m({ 1: ['apiVersion', 'string'], 2: ['kind', 'string'] })],
  2: ['raw', 'bytes'],
  3: ['contentEncoding', 'string'],
  4: ['contentType', 'string'],
});

class Reader {
  private pos = 0;
  private readonly buf: Buffer;
  private readonly end: number;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw badRequest('protobuf: truncated varint');
      const b = this.buf[this.pos++] ?? 0;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw badRequest('protobuf: varint too long');
    }
  }

  bytes(): Buffer {
    const n = Number(this.varint());
    if (this.pos + n > this.end) throw badRequest('protobuf: truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw badRequest(`protobuf: unsupported wire type ${wire}`);
  }
}

function signed(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

function decodeScalar(t: Scalar, r: Reader, path: string): Json {
  switch (t) {
    case 'string':
      return r.bytes().toString('utf8');
    case 'bytes':
      return r.bytes().toString('base64');
    case 'int':
    case 'int0':
      return signed(r.varint());
    case 'bool':
    case 'bool0':
      return r.varint() !== 0n;
    case 'time': {
      const t2 = decodeMessage(r.bytes(), m({ 1: ['seconds', 'int'], 2: ['nanos', 'int'] }), path);
      const secs = typeof t2['seconds'] === 'number' ? t2['seconds'] : 0;
      return secs === 0 ? null : new Date(secs * 1000).toISOString().replace('.000Z', 'Z');
    }
    case 'intOrString': {
      const v = decodeMessage(
        r.bytes(),
        m({ 1: ['type', 'int'], 2: ['intVal', 'int'], 3: ['strVal', 'string'] }),
        path,
      );
      return v['type'] === 1 ? (v['strVal'] ?? '') : (v['intVal'] ?? 0);
    }
    case 'quantity':
      return decodeMessage(r.bytes(), m({ 1: ['string', 'string'] }), path)['string'] ?? '';
  }
}

function decodeMessage(buf: Buffer, msg: Msg, path: string): JsonObject {
  const out: JsonObject = {};
  const r = new Reader(buf);
  while (!r.done) {
    const key = Number(r.varint());
    const num = key >>> 3;
    const wire = key & 7;
    const field = msg.fields[num];
    if (field === undefined && msg.lenient === true) {
      r.skip(wire);
      continue;
    }
    if (field === undefined) {
      throw unsupportedMediaType(
        `application/vnd.kubernetes.protobuf (field ${num} of ${path === '' ? 'the object' : path} is not supported)`,
        ['application/json', 'application/yaml'],
      );
    }
    const [name, type] = field;
    const p = path === '' ? name : `${path}.${name}`;
    if (typeof type === 'string') {
      const v = decodeScalar(type, r, p);
      if (v === null || v === '' || (type === 'int0' && v === 0) || (type === 'bool0' && v === false))
        deleteKey(out, name);
      else out[name] = v;
    } else if ('fields' in type) out[name] = decodeMessage(r.bytes(), type, p);
    else if ('map' in type) {
      const entry = decodeMessage(
        r.bytes(),
        m({ 1: ['key', 'string'], 2: ['value', typeof type.map === 'string' ? type.map : type.map] }),
        p,
      );
      const mapObj = (out[name] ?? {}) as JsonObject;
      const v = entry['value'];
      mapObj[scalarString(entry['key'])] =
        v === undefined ? (type.map === 'string' || type.map === 'bytes' ? '' : {}) : v;
      if (typeof type.map !== 'string' && v !== undefined && isItems(v))
        mapObj[scalarString(entry['key'])] = v['items'] ?? [];
      out[name] = mapObj;
    } else {
      const arr = (out[name] ?? []) as Json[];
      const item = type.repeated;
      if (typeof item === 'string') {
        if (wire === 2 && item === 'int') {
          const sub = new Reader(r.bytes());
          while (!sub.done) arr.push(signed(sub.varint()));
        } else arr.push(decodeScalar(item, r, p));
      } else arr.push(decodeMessage(r.bytes(), item, p));
      out[name] = arr;
    }
  }
  return out;
}

function isItems(v: Json): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'items' in v;
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/**
 * Decodes a protobuf request body into the JSON object it stands for (apiVersion and kind from the
 * envelope). Unsupported kinds or fields are a 415, malformed data a 400.
 */
export function decodeK8sProtobuf(body: Buffer): JsonObject {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw badRequest('protobuf: missing k8s envelope');
  const unknown = decodeMessage(body.subarray(4), UNKNOWN, '');
  const tm = (unknown['typeMeta'] ?? {}) as JsonObject;
  const apiVersion = typeof tm['apiVersion'] === 'string' ? tm['apiVersion'] : '';
  const kind = typeof tm['kind'] === 'string' ? tm['kind'] : '';
  if (unknown['contentEncoding'] !== undefined && unknown['contentEncoding'] !== '') {
    throw unsupportedMediaType(
      `application/vnd.kubernetes.protobuf; encoding=${scalarString(unknown['contentEncoding'])}`,
      ['application/json'],
    );
  }
  const groupVersion = apiVersion.includes('/') ? apiVersion : `/${apiVersion}`;
  const msg = KINDS[`${groupVersion}/${kind}`];
  if (msg === undefined)
    throw unsupportedMediaType('application/vnd.kubernetes.protobuf', ['application/json', 'application/yaml']);
  const raw = typeof unknown['raw'] === 'string' ? Buffer.from(unknown['raw'], 'base64') : Buffer.alloc(0);
  const obj = decodeMessage(raw, msg, '');
  return { apiVersion, kind, ...obj };
}
