/**
 * Label and field selectors in their query-string form (apimachinery `labels.Parse` and
 * `fields.ParseSelector`). Both compile to predicates; parse errors are 400 BadRequest.
 */
import { badRequest } from './status.ts';

export type LabelOperator = 'in' | 'notin' | 'exists' | '!' | '=' | '==' | '!=' | 'gt' | 'lt';

export interface LabelRequirement {
  readonly key: string;
  readonly operator: LabelOperator;
  readonly values: readonly string[];
}

export interface LabelSelector {
  readonly requirements: readonly LabelRequirement[];
  /** True when the selector selects everything. */
  readonly empty: boolean;
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
  toString(): string;
}

const QUALIFIED_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Why `key` is not a valid label key (qualified name), or undefined when it is valid. */
export function labelKeyError(key: string): string | undefined {
  const parts = key.split('/');
  let name = key;
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix.length === 0) return 'prefix part must be non-empty';
    if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) {
      return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
    }
  } else if (parts.length > 2) {
    return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
  }
  if (name.length === 0) return 'name part must be non-empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  if (!QUALIFIED_NAME.test(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
  }
  return undefined;
}

/** Why `value` is not a valid label value, or undefined when it is valid. */
export function labelValueError(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (!LABEL_VALUE.test(value)) {
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
  }
  return undefined;
}

type Token =
  | { kind: 'id'; text: string }
  | { kind: 'op'; text: '=' | '==' | '!=' | '!' | '<' | '>' | '(' | ')' | ',' }
  | { kind: 'end' };

function lex(input: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const special = new Set(['=', '!', '<', '>', '(', ')', ',']);
  while (i < input.length) {
    const c = input[i] ?? '';
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '=' && input[i + 1] === '=') {
      out.push({ kind: 'op', text: '==' });
      i += 2;
    } else if (c === '!' && input[i + 1] === '=') {
      out.push({ kind: 'op', text: '!=' });
      i += 2;
    } else if (special.has(c)) {
      out.push({ kind: 'op', text: c as '=' | '!' | '<' | '>' | '(' | ')' | ',' });
      i++;
    } else {
      let j = i;
      while (j < input.length && !special.has(input[j] ?? '') && !/\s/.test(input[j] ?? '')) j++;
      out.push({ kind: 'id', text: input.slice(i, j) });
      i = j;
    }
  }
  out.push({ kind: 'end' });
  return out;
}

function describe(t: Token): string {
  return t.kind === 'end' ? 'end of string' : `'${t.text}'`;
}

/** Parses a label selector string (`a=b,c in (d,e),!f`). Throws a 400 ApiError on bad syntax. */
export function parseLabelSelector(input: string): LabelSelector {
  const tokens = lex(input);
  let pos = 0;
  const peek = (): Token => tokens[pos] ?? { kind: 'end' };
  const next = (): Token => tokens[pos++] ?? { kind: 'end' };
  const fail = (msg: string): never => {
    throw badRequest(`unable to parse requirement: ${msg}`);
  };
  const reqs: LabelRequirement[] = [];
  const checkKey = (key: string): void => {
    const e = labelKeyError(key);
    if (e !== undefined) fail(`key: Invalid value: ${JSON.stringify(key)}: ${e}`);
  };
  const checkValue = (value: string, i: number): void => {
    const e = labelValueError(value);
    if (e !== undefined) fail(`values[${i}][${value}]: Invalid value: ${JSON.stringify(value)}: ${e}`);
  };
  if (peek().kind === 'end') return compileLabelSelector([]);
  for (;;) {
    let t = next();
    if (t.kind === 'op' && t.text === '!') {
      const k = next();
      if (k.kind !== 'id') return fail(`found ${describe(k)}, expected: identifier after '!'`);
      checkKey(k.text);
      reqs.push({ key: k.text, operator: '!', values: [] });
    } else if (t.kind === 'id') {
      const key = t.text;
      checkKey(key);
      const op = peek();
      if (op.kind === 'end' || (op.kind === 'op' && op.text === ',')) {
        reqs.push({ key, operator: 'exists', values: [] });
      } else if (op.kind === 'id' && (op.text === 'in' || op.text === 'notin')) {
        next();
        const open = next();
        if (!(open.kind === 'op' && open.text === '(')) return fail(`found ${describe(open)}, expected: '('`);
        const values: string[] = [];
        let cur: string | undefined;
        for (;;) {
          const v = next();
          if (v.kind === 'id') {
            if (cur !== undefined) return fail(`found ${describe(v)}, expected: ',' or ')'`);
            cur = v.text;
          } else if (v.kind === 'op' && (v.text === ',' || v.text === ')')) {
            checkValue(cur ?? '', values.length);
            values.push(cur ?? '');
            cur = undefined;
            if (v.text === ')') break;
          } else {
            return fail(`found ${describe(v)}, expected: ',', ')' or identifier`);
          }
        }
        reqs.push({ key, operator: op.text, values: [...new Set(values)].sort() });
      } else if (op.kind === 'op' && ['=', '==', '!=', '<', '>'].includes(op.text)) {
        next();
        const v = peek();
        let value = '';
        if (v.kind === 'id') {
          next();
          value = v.text;
        } else if (!(v.kind === 'end' || v.text === ',')) {
          return fail(`found ${describe(v)}, expected: identifier`);
        }
        if (op.text === '<' || op.text === '>') {
          if (!/^-?\d+$/.test(value)) {
            return fail(
              `for 'Gt', 'Lt' operators, the value must be an integer: values[0]: Invalid value: ${JSON.stringify(value)}`,
            );
          }
          reqs.push({ key, operator: op.text === '<' ? 'lt' : 'gt', values: [value] });
        } else {
          checkValue(value, 0);
          reqs.push({ key, operator: op.text as '=' | '==' | '!=', values: [value] });
        }
      } else {
        return fail(`found ${describe(op)}, expected: in, notin, =, ==, !=, gt, lt`);
      }
    } else {
      return fail(`found ${describe(t)}, expected: !, identifier, or 'end of string'`);
    }
    t = next();
    if (t.kind === 'end') break;
    if (!(t.kind === 'op' && t.text === ',')) return fail(`found ${describe(t)}, expected: ',' or 'end of string'`);
    if (peek().kind === 'end') return fail(`found 'end of string', expected: !, identifier`);
  }
  return compileLabelSelector(reqs);
}

function requirementString(r: LabelRequirement): string {
  switch (r.operator) {
    case 'exists':
      return r.key;
    case '!':
      return `!${r.key}`;
    case 'in':
    case 'notin':
      return `${r.key} ${r.operator} (${r.values.join(',')})`;
    case 'gt':
      return `${r.key}>${r.values[0] ?? ''}`;
    case 'lt':
      return `${r.key}<${r.values[0] ?? ''}`;
    case '=':
    case '==':
    case '!=':
      return `${r.key}${r.operator}${r.values[0] ?? ''}`;
  }
}

function requirementMatches(r: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const v = labels[r.key];
  switch (r.operator) {
    case 'exists':
      return has;
    case '!':
      return !has;
    case '=':
    case '==':
    case 'in':
      return has && r.values.includes(v ?? '');
    case '!=':
    case 'notin':
      return !has || !r.values.includes(v ?? '');
    case 'gt':
    case 'lt': {
      if (!has || v === undefined || !/^-?\d+$/.test(v)) return false;
      const lhs = Number(v);
      const rhs = Number(r.values[0]);
      return r.operator === 'gt' ? lhs > rhs : lhs < rhs;
    }
  }
}

/** A selector from requirements (AND of all; none selects everything). */
export function compileLabelSelector(reqs: readonly LabelRequirement[]): LabelSelector {
  return {
    requirements: reqs,
    empty: reqs.length === 0,
    matches: (labels) => reqs.every((r) => requirementMatches(r, labels ?? {})),
    toString: () => reqs.map(requirementString).join(','),
  };
}

export interface FieldRequirement {
  readonly field: string;
  readonly operator: '=' | '!=';
  readonly value: string;
}

export interface FieldSelector {
  readonly requirements: readonly FieldRequirement[];
  readonly empty: boolean;
  /** Evaluates the selector against an object's field set (field label → value). */
  matches(fields: (label: string) => string): boolean;
  /** The value required by `field=value`, if the selector has such a term (for indexed lookups). */
  requiredValue(field: string): string | undefined;
}

/** Splits on a separator that is not escaped with a backslash. */
function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? '';
    if (c === '\\' && i + 1 < s.length) {
      cur += c + (s[i + 1] ?? '');
      i++;
    } else if (c === sep) {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

function unescapeFieldValue(v: string): string {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i] ?? '';
    if (c === '\\') {
      const n = v[i + 1];
      if (n === '\\' || n === ',' || n === '=') {
        out += n;
        i++;
        continue;
      }
      throw badRequest(`invalid field selector: invalid escape sequence: \\${n ?? ''}`);
    }
    if (c === ',' || c === '=') throw badRequest(`invalid field selector: unescaped ${c} in value`);
    out += c;
  }
  return out;
}

/**
 * Parses a field selector (`spec.nodeName=n1,metadata.namespace!=kube-system`). `supported` lists the
 * field labels the kind accepts; any other label is a 400 `field label not supported`.
 */
export function parseFieldSelector(input: string, supported: ReadonlySet<string>): FieldSelector {
  const reqs: FieldRequirement[] = [];
  if (input.trim() !== '') {
    for (const term of splitUnescaped(input, ',')) {
      if (term === '') continue;
      let m: RegExpExecArray | null;
      let field: string;
      let operator: '=' | '!=';
      let raw: string;
      if ((m = /^([^=!]*)!=(.*)$/s.exec(term)) !== null) {
        field = m[1] ?? '';
        operator = '!=';
        raw = m[2] ?? '';
      } else if ((m = /^([^=!]*)==(.*)$/s.exec(term)) !== null) {
        field = m[1] ?? '';
        operator = '=';
        raw = m[2] ?? '';
      } else if ((m = /^([^=!]*)=(.*)$/s.exec(term)) !== null) {
        field = m[1] ?? '';
        operator = '=';
        raw = m[2] ?? '';
      } else {
        throw badRequest(`invalid selector: '${input}'; can't understand '${term}'`);
      }
      field = field.trim();
      if (!supported.has(field)) throw badRequest(`field label not supported: ${field}`);
      reqs.push({ field, operator, value: unescapeFieldValue(raw) });
    }
  }
  return {
    requirements: reqs,
    empty: reqs.length === 0,
    matches: (fields) =>
      reqs.every((r) => (r.operator === '=' ? fields(r.field) === r.value : fields(r.field) !== r.value)),
    requiredValue: (field) => reqs.find((r) => r.field === field && r.operator === '=')?.value,
  };
}
