/**
 * CustomResourceDefinitions: the CRD type itself (validation of names, versions and structural
 * schemas), the resource types a CRD serves (one per served version, pruned, defaulted and validated
 * by the version's schema, with a status subresource when declared), and the CRD's status
 * (acceptedNames, storedVersions, NamesAccepted and Established conditions).
 */
import { SMP_SCHEMAS } from './patch.ts';
import { crdPrinter, PRINTERS, type CrdPrinterColumn } from './printers.ts';
import { ALL_VERBS, metaFieldLabels, type ResourceType } from './resources.ts';
import { checkStructural, type JSONSchemaProps } from './schema.ts';
import { fieldErr, type FieldError } from './status.ts';
import { clone, deepEqual, getPath, isObject, rfc3339, scalarString, type JsonObject, type KObject } from './types.ts';
import { dns1035Label, dns1123Label, dns1123Subdomain } from './validation.ts';

export const CRD_GROUP = 'apiextensions.k8s.io';
export const CRD_STORAGE = `${CRD_GROUP}/customresourcedefinitions`;

interface CrdNames {
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  shortNames: string[];
  categories: string[];
}

interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  schema: JSONSchemaProps | undefined;
  status: boolean;
  columns: CrdPrinterColumn[];
}

function list(v: unknown): JsonObject[] {
  return Array.isArray(v) ? v.filter(isObject) : [];
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function crdNames(crd: KObject): CrdNames {
  const n = getPath(crd, ['spec', 'names']);
  const names = isObject(n) ? n : {};
  const kind = scalarString(names['kind']);
  return {
    plural: scalarString(names['plural']),
    singular: scalarString(names['singular']) || kind.toLowerCase(),
    kind,
    listKind: scalarString(names['listKind']) || `${kind}List`,
    shortNames: strings(names['shortNames']),
    categories: strings(names['categories']),
  };
}

function crdVersions(crd: KObject): CrdVersion[] {
  return list(getPath(crd, ['spec', 'versions'])).map((v) => {
    const schema = getPath(v, ['schema', 'openAPIV3Schema']);
    const cols = list(v['additionalPrinterColumns']).map((c) => {
      const col: CrdPrinterColumn = {
        name: scalarString(c['name']),
        type: scalarString(c['type']),
        jsonPath: scalarString(c['jsonPath']),
        ...(typeof c['format'] === 'string' ? { format: c['format'] } : {}),
        ...(typeof c['description'] === 'string' ? { description: c['description'] } : {}),
        ...(typeof c['priority'] === 'number' ? { priority: c['priority'] } : {}),
      };
      return col;
    });
    return {
      name: scalarString(v['name']),
      served: v['served'] === true,
      storage: v['storage'] === true,
      schema: isObject(schema) ? schema : undefined,
      status: isObject(getPath(v, ['subresources', 'status'])),
      columns: cols,
    };
  });
}

const AGE_COLUMN: CrdPrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

/** The resource types a CRD serves, one per served version. */
export function customResourceTypes(crd: KObject): ResourceType[] {
  const group = scalarString(getPath(crd, ['spec', 'group']));
  const names = crdNames(crd);
  const namespaced = getPath(crd, ['spec', 'scope']) === 'Namespaced';
  const storage = crdVersions(crd).find((v) => v.storage)?.name;
  return crdVersions(crd)
    .filter((v) => v.served)
    .map((v) => {
      const statusSub = v.status;
      const t: ResourceType = {
        group,
        version: v.name,
        resource: names.plural,
        singular: names.singular,
        kind: names.kind,
        listKind: names.listKind,
        namespaced,
        shortNames: names.shortNames,
        categories: names.categories,
        verbs: ALL_VERBS,
        subresources: statusSub ? { status: ['get', 'patch', 'update'] } : {},
        fieldLabels: metaFieldLabels(namespaced),
        strategy: {
          nameRule: dns1123Subdomain,
          statusSubresource: statusSub,
          allowUnconditionalUpdate: false,
          generationOf: (o) => {
            const rest: JsonObject = { ...o };
            delete rest['metadata'];
            delete rest['apiVersion'];
            delete rest['kind'];
            if (statusSub) delete rest['status'];
            return rest;
          },
          prepareForCreate(o) {
            // Objects are stored in the storage version's apiVersion (conversion None: same shape).
            if (storage !== undefined) o.apiVersion = `${group}/${storage}`;
          },
          prepareForUpdate(o) {
            if (storage !== undefined) o.apiVersion = `${group}/${storage}`;
          },
        },
        smp: undefined,
        printer: crdPrinter(v.columns.length > 0 ? v.columns : [AGE_COLUMN]),
        ...(v.schema === undefined ? {} : { schema: v.schema }),
        crd: crd.metadata.name ?? '',
      };
      return t;
    });
}

function validateCrd(crd: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = isObject(crd['spec']) ? crd['spec'] : {};
  const group = scalarString(spec['group']);
  const names = crdNames(crd);
  if (group === '') errs.push(fieldErr.required('spec.group'));
  else if (dns1123Subdomain(group) !== undefined || !group.includes('.')) {
    errs.push(fieldErr.invalid('spec.group', group, 'should be a domain with at least one dot'));
  }
  if (names.plural === '') errs.push(fieldErr.required('spec.names.plural'));
  else if (dns1123Label(names.plural) !== undefined)
    errs.push(fieldErr.invalid('spec.names.plural', names.plural, dns1123Label(names.plural) ?? ''));
  if (names.kind === '') errs.push(fieldErr.required('spec.names.kind'));
  else if (!/^[A-Za-z][A-Za-z0-9]*$/.test(names.kind)) {
    errs.push(
      fieldErr.invalid(
        'spec.names.kind',
        names.kind,
        'may have mixed case, but should otherwise match: ^[a-z]([-a-z0-9]*[a-z0-9])?$',
      ),
    );
  }
  if (dns1035Label(names.singular) !== undefined)
    errs.push(fieldErr.invalid('spec.names.singular', names.singular, dns1035Label(names.singular) ?? ''));
  names.shortNames.forEach((s, i) => {
    const e = dns1123Label(s);
    if (e !== undefined) errs.push(fieldErr.invalid(`spec.names.shortNames[${i}]`, s, e));
  });
  const expected = `${names.plural}.${group}`;
  if (crd.metadata.name !== expected) {
    errs.push(fieldErr.invalid('metadata.name', crd.metadata.name ?? '', 'must be spec.names.plural+"."+spec.group'));
  }
  const scope = spec['scope'];
  if (scope !== 'Namespaced' && scope !== 'Cluster')
    errs.push(fieldErr.notSupported('spec.scope', scope, ['Cluster', 'Namespaced']));
  const versions = crdVersions(crd);
  if (versions.length === 0)
    errs.push(fieldErr.required('spec.versions', 'must have exactly one version marked as storage version'));
  const storage = versions.filter((v) => v.storage).length;
  if (versions.length > 0 && storage !== 1) {
    errs.push(
      fieldErr.invalid('spec.versions', versions.length, 'must have exactly one version marked as storage version'),
    );
  }
  if (versions.length > 0 && !versions.some((v) => v.served)) {
    errs.push(fieldErr.invalid('spec.versions', versions.length, 'must have at least one version marked as served'));
  }
  const seen = new Set<string>();
  versions.forEach((v, i) => {
    const p = `spec.versions[${i}]`;
    if (v.name === '' || dns1035Label(v.name) !== undefined)
      errs.push(fieldErr.invalid(`${p}.name`, v.name, 'must be a DNS-1035 label'));
    if (seen.has(v.name)) errs.push(fieldErr.duplicate(`${p}.name`, v.name));
    seen.add(v.name);
    if (v.schema === undefined) errs.push(fieldErr.required(`${p}.schema.openAPIV3Schema`, 'schemas are required'));
    else errs.push(...checkStructural(v.schema, `${p}.schema.openAPIV3Schema`));
    v.columns.forEach((c, j) => {
      if (c.name === '') errs.push(fieldErr.required(`${p}.additionalPrinterColumns[${j}].name`));
      if (c.jsonPath === '') errs.push(fieldErr.required(`${p}.additionalPrinterColumns[${j}].jsonPath`));
      if (!['integer', 'number', 'string', 'boolean', 'date'].includes(c.type)) {
        errs.push(
          fieldErr.notSupported(`${p}.additionalPrinterColumns[${j}].type`, c.type, [
            'boolean',
            'date',
            'integer',
            'number',
            'string',
          ]),
        );
      }
    });
  });
  return errs;
}

/** The defaults a CRD gets: singular and listKind names, conversion strategy None. */
function defaultCrd(o: KObject): void {
  const spec = isObject(o['spec']) ? o['spec'] : (o['spec'] = {});
  const names = isObject(spec['names']) ? spec['names'] : (spec['names'] = {});
  const kind = names['kind'];
  if (names['singular'] === undefined && typeof kind === 'string') names['singular'] = kind.toLowerCase();
  if (names['listKind'] === undefined && typeof kind === 'string') names['listKind'] = `${kind}List`;
  if (spec['conversion'] === undefined) spec['conversion'] = { strategy: 'None' };
}

/** The CustomResourceDefinition type (apiextensions.k8s.io/v1). */
export function crdType(): ResourceType {
  return {
    group: CRD_GROUP,
    version: 'v1',
    resource: 'customresourcedefinitions',
    singular: 'customresourcedefinition',
    kind: 'CustomResourceDefinition',
    listKind: 'CustomResourceDefinitionList',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    verbs: ALL_VERBS,
    subresources: { status: ['get', 'patch', 'update'] },
    fieldLabels: metaFieldLabels(false),
    strategy: {
      nameRule: dns1123Subdomain,
      statusSubresource: true,
      allowUnconditionalUpdate: true,
      generationOf: (o) => o['spec'],
      prepareForCreate(o) {
        delete o['status'];
        defaultCrd(o);
      },
      prepareForUpdate: defaultCrd,
      validate: validateCrd,
      validateUpdate(o, old) {
        const errs: FieldError[] = [];
        if (getPath(o, ['spec', 'scope']) !== getPath(old, ['spec', 'scope'])) {
          errs.push(fieldErr.invalid('spec.scope', getPath(o, ['spec', 'scope']), 'field is immutable'));
        }
        if (getPath(o, ['spec', 'group']) !== getPath(old, ['spec', 'group'])) {
          errs.push(fieldErr.invalid('spec.group', getPath(o, ['spec', 'group']), 'field is immutable'));
        }
        return errs;
      },
    },
    smp: SMP_SCHEMAS[`${CRD_GROUP}/CustomResourceDefinition`],
    printer: PRINTERS[`${CRD_GROUP}/CustomResourceDefinition`],
  };
}

function condition(
  type: string,
  status: string,
  reason: string,
  message: string,
  now: string,
  prev: JsonObject[],
): JsonObject {
  const old = prev.find((c) => c['type'] === type);
  const lastTransitionTime = old !== undefined && old['status'] === status ? (old['lastTransitionTime'] ?? now) : now;
  return { type, status, lastTransitionTime, reason, message };
}

/**
 * The status a CRD should have: accepted names unless another CRD of the group already serves the
 * same kind, Established once names are accepted, Terminating while it is being deleted.
 */
export function desiredCrdStatus(crd: KObject, others: readonly KObject[], nowMs: number): JsonObject {
  const now = rfc3339(nowMs);
  const st = isObject(crd['status']) ? crd['status'] : {};
  const prev = list(st['conditions']);
  const names = crdNames(crd);
  const group = getPath(crd, ['spec', 'group']);
  const clash = others.find(
    (o) =>
      o.metadata.name !== crd.metadata.name &&
      getPath(o, ['spec', 'group']) === group &&
      (crdNames(o).kind === names.kind || crdNames(o).listKind === names.listKind) &&
      (o.metadata.creationTimestamp ?? '') <= (crd.metadata.creationTimestamp ?? ''),
  );
  const conditions: JsonObject[] = [];
  if (clash === undefined) {
    conditions.push(condition('NamesAccepted', 'True', 'NoConflicts', 'no conflicts found', now, prev));
    conditions.push(
      condition('Established', 'True', 'InitialNamesAccepted', 'the initial names have been accepted', now, prev),
    );
  } else {
    conditions.push(
      condition('NamesAccepted', 'False', 'KindConflict', `"${names.kind}" is already in use`, now, prev),
    );
    conditions.push(condition('Established', 'False', 'NotAccepted', 'not all names are accepted', now, prev));
  }
  if (crd.metadata.deletionTimestamp !== undefined) {
    conditions.push(
      condition(
        'Terminating',
        'True',
        'InstanceDeletionInProgress',
        'CustomResource deletion is in progress',
        now,
        prev,
      ),
    );
  }
  const stored = new Set(strings(st['storedVersions']));
  const sv = crdVersions(crd).find((v) => v.storage)?.name;
  if (sv !== undefined) stored.add(sv);
  const accepted: JsonObject = {
    plural: names.plural,
    singular: names.singular,
    kind: names.kind,
    listKind: names.listKind,
  };
  if (names.shortNames.length > 0) accepted['shortNames'] = names.shortNames;
  if (names.categories.length > 0) accepted['categories'] = names.categories;
  return {
    conditions: conditions,
    acceptedNames: clash === undefined ? accepted : (clone(st['acceptedNames']) ?? { plural: '', kind: '' }),
    storedVersions: [...stored],
  };
}

/** True when `next` differs from the current status in anything but transition times. */
export function crdStatusChanged(cur: unknown, next: JsonObject): boolean {
  const strip = (s: unknown): unknown => {
    if (!isObject(s)) return s;
    return { ...s, conditions: list(s['conditions']).map((c) => ({ ...c, lastTransitionTime: undefined })) };
  };
  return !deepEqual(strip(cur), strip(next));
}

/** Whether the CRD is Established (its types may be served). */
export function crdEstablished(crd: KObject): boolean {
  return list(getPath(crd, ['status', 'conditions'])).some(
    (c) => c['type'] === 'Established' && c['status'] === 'True',
  );
}
