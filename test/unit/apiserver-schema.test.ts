import t from 'tap';
import {
  applyDefaults,
  checkStructural,
  prune,
  validateValue,
  type JSONSchemaProps,
} from '../../src/lab/apiserver/schema.ts';
import type { JsonObject } from '../../src/lab/apiserver/types.ts';

const schema: JSONSchemaProps = {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      required: ['priority'],
      properties: {
        priority: { type: 'integer', minimum: 0, maximum: 255 },
        mode: { type: 'string', enum: ['A', 'B'], default: 'A' },
        port: { 'x-kubernetes-int-or-string': true },
        cidr: { type: 'string', format: 'cidr' },
        name: { type: 'string', pattern: '^[a-z]+$', maxLength: 5 },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        tags: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'set', maxItems: 3 },
        proto: {
          type: 'object',
          oneOf: [{ required: ['icmp'] }, { required: ['tcp'] }],
          properties: { icmp: { type: 'object' }, tcp: { type: 'object' } },
        },
      },
    },
  },
};

t.test('pruning drops undeclared fields and keeps preserved ones', (t) => {
  const obj: JsonObject = {
    apiVersion: 'x/v1',
    kind: 'X',
    metadata: { name: 'n', bogusMeta: 1 },
    spec: {
      priority: 1,
      extra: 2,
      labels: { a: 'b' },
      free: { anything: { deep: true } },
      proto: { icmp: { type: 8 } },
    },
    top: 3,
  };
  const removed = prune(obj, schema);
  t.same(removed.sort(), ['metadata.bogusMeta', 'spec.extra', 'spec.proto.icmp.type', 'top']);
  t.same(obj, {
    apiVersion: 'x/v1',
    kind: 'X',
    metadata: { name: 'n' },
    spec: { priority: 1, labels: { a: 'b' }, free: { anything: { deep: true } }, proto: { icmp: {} } },
  });
  t.end();
});

t.test('defaults fill absent properties', (t) => {
  const obj: JsonObject = { spec: { priority: 1 } };
  applyDefaults(obj, schema);
  t.same(obj, { spec: { priority: 1, mode: 'A' } });
  t.end();
});

t.test('validation reports every error with kube-apiserver wording', (t) => {
  const errs = validateValue(
    {
      spec: {
        mode: 'C',
        port: 1.5,
        cidr: '10.0.0.0/40',
        name: 'Toolong',
        tags: ['a', 'a', 'b', 'c'],
        proto: { icmp: {}, tcp: {} },
        priority: 'high',
      },
    },
    schema,
    '',
  );
  const byField = Object.fromEntries(errs.map((e) => [e.field, `${e.type}: ${e.body}`]));
  t.same(byField, {
    'spec.mode': 'FieldValueNotSupported: Unsupported value: "C": supported values: "A", "B"',
    'spec.port':
      'FieldValueTypeInvalid: Invalid value: "number": spec.port in body must be of type integer,string: "number"',
    'spec.cidr':
      'FieldValueInvalid: Invalid value: "10.0.0.0/40": spec.cidr in body must be of type cidr: "10.0.0.0/40"',
    'spec.name': 'FieldValueInvalid: Invalid value: "Toolong": spec.name in body should match \'^[a-z]+$\'',
    'spec.tags': 'FieldValueTooMany: Too many: 4: must have at most 3 items',
    'spec.tags[1]': 'FieldValueDuplicate: Duplicate value: "a"',
    'spec.proto':
      'FieldValueInvalid: Invalid value: "object": spec.proto in body must validate one and only one schema (oneOf). Found 2 valid alternatives',
    'spec.priority':
      'FieldValueTypeInvalid: Invalid value: "string": spec.priority in body must be of type integer: "string"',
  });
  t.same(
    validateValue({ spec: {} }, schema, '').map((e) => `${e.field}: ${e.body}`),
    ['spec.priority: Required value'],
  );
  t.same(
    validateValue({ spec: { priority: 256 } }, schema, '').map((e) => `${e.field}: ${e.body}`),
    ['spec.priority: Invalid value: 256: spec.priority in body should be less than or equal to 255'],
  );
  t.same(validateValue({ spec: { priority: 1, name: 'abcdefg' } }, schema, '')[0]?.type, 'FieldValueTooLong');
  t.same(validateValue({ spec: { priority: 1, cidr: 'fd00::/64', port: 'http' } }, schema, ''), []);
  t.end();
});

t.test('structural checks of CRD schemas', (t) => {
  t.same(checkStructural(schema, 'spec.versions[0].schema.openAPIV3Schema'), []);
  const errs = checkStructural(
    {
      type: 'object',
      properties: {
        a: {},
        b: { type: 'string', items: { type: 'string' } },
        c: { type: 'array' },
        d: { type: 'banana' },
      },
    },
    's',
  ).map((e) => e.field);
  t.same(errs, ['s.properties[a].type', 's.properties[b].items', 's.properties[c].items', 's.properties[d].type']);
  t.same(
    checkStructural({ type: 'string' }, 's').map((e) => e.field),
    ['s.type'],
    'root must be an object',
  );
  t.end();
});
