/**
 * The in-process core of the API server, without HTTP: the store, the served types, the REST
 * registry, token authority, RBAC authorizer and the built-in controllers, plus the bootstrap
 * objects of a fresh cluster. `startApiServer` wraps it with TLS, HTTP and persistence; tests use it
 * directly with a fake clock.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { Clock } from '../../common/util/clock.ts';
import { AntreaError, ValidationError } from '../../common/util/errors.ts';
import type { Logger } from '../../common/util/log.ts';
import { ipv4ToInt, PodCidrAllocator, ServiceAllocator } from './allocators.ts';
import { RbacAuthorizer, TokenAuthority, type UserInfo } from './auth.ts';
import { Controllers } from './controllers.ts';
import { CRD_STORAGE, crdType } from './crd.ts';
import { builtinTypes } from './kinds.ts';
import { bootstrapPolicy } from './policy.ts';
import { Registry } from './registry.ts';
import { ResourceRegistry, storageKeyOf, type ResourceType, type StrategyContext } from './resources.ts';
import { reviewTypes } from './reviews.ts';
import { ObjectStore } from './store.ts';
import { clone, deepEqual, getPath, isObject, scalarString, type JsonObject } from './types.ts';

export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface ApiCoreOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** A store to serve (restored from disk); a fresh one when absent. */
  readonly store?: ObjectStore;
  readonly watchHistorySize?: number;
  readonly serviceCIDR?: string;
  readonly clusterCIDR?: string;
  readonly nodeCIDRMaskSize?: number;
  /** PEM of the ServiceAccount token signing key; generated when absent. */
  readonly saKeyPem?: string;
  readonly adminToken?: string;
  readonly staticTokens?: readonly { readonly token: string; readonly user: UserInfo }[];
  readonly watchTimeoutSeconds?: readonly [number, number];
  readonly bookmarkIntervalSeconds?: number;
  readonly maxWatchBufferBytes?: number;
  readonly watchFlushDelayMs?: number;
  readonly completePodDeletion?: boolean;
  /** The cluster CA published as kube-root-ca.crt in every namespace. */
  readonly caPem?: string;
}

export interface ApiCore {
  readonly store: ObjectStore;
  readonly types: ResourceRegistry;
  readonly registry: Registry;
  readonly controllers: Controllers;
  readonly tokens: TokenAuthority;
  readonly authz: RbacAuthorizer;
  readonly services: ServiceAllocator;
}

/** Builds the core; call `controllers.start()` and `bootstrapObjects` to bring it up. */
export function createApiCore(o: ApiCoreOptions): ApiCore {
  const store =
    o.store ?? new ObjectStore(o.watchHistorySize === undefined ? {} : { historyCapacity: o.watchHistorySize });
  // Allocators are rebuilt from what is stored.
  const services = new ServiceAllocator(o.serviceCIDR ?? '10.96.0.0/12');
  const nodeCidrs =
    o.clusterCIDR === undefined ? undefined : new PodCidrAllocator(o.clusterCIDR, o.nodeCIDRMaskSize ?? 24);
  for (const e of store.type('/services').objects.values()) {
    const spec = isObject(e.obj['spec']) ? e.obj['spec'] : {};
    if (typeof spec['clusterIP'] === 'string' && spec['clusterIP'] !== 'None' && spec['clusterIP'] !== '') {
      services.allocateIP(spec['clusterIP']);
    }
    if (spec['type'] === 'NodePort' || spec['type'] === 'LoadBalancer') {
      for (const p of Array.isArray(spec['ports']) ? spec['ports'] : []) {
        if (isObject(p) && typeof p['nodePort'] === 'number') services.allocateNodePort(p['nodePort']);
      }
    }
  }
  if (nodeCidrs !== undefined) {
    for (const e of store.type('/nodes').objects.values()) {
      const cidrs = getPath(e.obj, ['spec', 'podCIDRs']);
      if (Array.isArray(cidrs)) for (const c of cidrs) nodeCidrs.reserve(scalarString(c));
    }
  }
  const tokens = new TokenAuthority({
    keyPem: o.saKeyPem ?? TokenAuthority.generateKeyPem(),
    issuer: SERVICE_ACCOUNT_ISSUER,
    audiences: [SERVICE_ACCOUNT_ISSUER],
    clock: o.clock,
    store,
  });
  if (o.adminToken !== undefined) {
    tokens.addStaticToken(o.adminToken, {
      name: 'kubernetes-admin',
      groups: ['system:masters', 'system:authenticated'],
    });
  }
  for (const s of o.staticTokens ?? []) tokens.addStaticToken(s.token, s.user);
  const authz = new RbacAuthorizer(store);
  const types = new ResourceRegistry();
  for (const t of builtinTypes()) types.add(t);
  types.add(crdType());
  for (const t of reviewTypes(tokens, authz)) types.add(t);
  const ctx: StrategyContext = { clock: o.clock, lookup: (sk, key) => store.get(sk, key)?.obj, services, nodeCidrs };
  const registry = new Registry(store, types, ctx, {
    clock: o.clock,
    ...(o.watchTimeoutSeconds === undefined
      ? {}
      : { watchTimeoutMs: [o.watchTimeoutSeconds[0] * 1000, o.watchTimeoutSeconds[1] * 1000] as const }),
    ...(o.bookmarkIntervalSeconds === undefined ? {} : { bookmarkIntervalMs: o.bookmarkIntervalSeconds * 1000 }),
    ...(o.maxWatchBufferBytes === undefined ? {} : { maxWatchBufferBytes: o.maxWatchBufferBytes }),
    ...(o.watchFlushDelayMs === undefined ? {} : { watchFlushDelayMs: o.watchFlushDelayMs }),
  });
  const controllers = new Controllers(registry, types, {
    clock: o.clock,
    logger: o.logger,
    ...(o.caPem === undefined ? {} : { caPem: o.caPem }),
    ...(o.completePodDeletion === undefined ? {} : { completePodDeletion: o.completePodDeletion }),
  });
  return { store, types, registry, controllers, tokens, authz, services };
}

/** The served (stored) type of a group and resource. */
export function typeOf(types: ResourceRegistry, group: string, resource: string): ResourceType {
  const t = types.all().find((x) => x.group === group && x.resource === resource && x.virtual === undefined);
  if (t === undefined) throw new AntreaError('APISERVER_NOT_SERVED', `resource ${resource}.${group} is not served`);
  return t;
}

function ensure(registry: Registry, t: ResourceType, ns: string | undefined, body: JsonObject): void {
  const name = scalarString(getPath(body, ['metadata', 'name']));
  if (registry.find(storageKeyOf(t), ns === undefined ? name : `${ns}/${name}`) !== undefined) return;
  registry.create(t, ns, body);
}

export interface BootstrapOptions {
  /** Address and port of the `kubernetes` Service's endpoint. */
  readonly advertiseAddress: string;
  readonly port: number;
  /** YAML files whose CustomResourceDefinitions are created or updated. */
  readonly crdFiles: readonly string[];
  readonly logger: Logger;
}

/**
 * Creates what a fresh cluster has (namespaces default, kube-system, kube-public, kube-node-lease,
 * the bootstrap RBAC policy, the `kubernetes` Service and its EndpointSlice) and installs or updates
 * the CRDs of `crdFiles`. Idempotent: existing objects are kept, unchanged CRDs are not rewritten.
 */
export function bootstrapObjects(core: ApiCore, o: BootstrapOptions): void {
  const { registry, types, services } = core;
  const nsType = typeOf(types, '', 'namespaces');
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    ensure(registry, nsType, undefined, { metadata: { name: ns } });
  }
  for (const obj of bootstrapPolicy()) {
    const kind = scalarString(obj['kind']);
    const resource = kind === 'ClusterRole' ? 'clusterroles' : 'clusterrolebindings';
    ensure(registry, typeOf(types, 'rbac.authorization.k8s.io', resource), undefined, obj);
  }
  const svcType = typeOf(types, '', 'services');
  const svc = registry.find('/services', 'default/kubernetes');
  const ports = [{ name: 'https', port: 443, protocol: 'TCP', targetPort: o.port }];
  if (svc === undefined) {
    registry.create(svcType, 'default', {
      metadata: { name: 'kubernetes', labels: { component: 'apiserver', provider: 'kubernetes' } },
      spec: { type: 'ClusterIP', clusterIP: services.firstIP, ports, sessionAffinity: 'None' },
    });
  } else if (!deepEqual(getPath(svc.obj, ['spec', 'ports']), ports)) {
    const next = clone(svc.obj);
    (next['spec'] as JsonObject)['ports'] = ports;
    registry.update(svcType, 'default', 'kubernetes', next);
  }
  if (ipv4ToInt(o.advertiseAddress) !== undefined) {
    const esType = typeOf(types, 'discovery.k8s.io', 'endpointslices');
    const endpoints = [
      { addresses: [o.advertiseAddress], conditions: { ready: true, serving: true, terminating: false } },
    ];
    const esPorts = [{ name: 'https', port: o.port, protocol: 'TCP' }];
    const es = registry.find('discovery.k8s.io/endpointslices', 'default/kubernetes');
    if (es === undefined) {
      registry.create(esType, 'default', {
        metadata: {
          name: 'kubernetes',
          labels: {
            'kubernetes.io/service-name': 'kubernetes',
            'endpointslice.kubernetes.io/managed-by': 'kube-apiserver',
          },
        },
        addressType: 'IPv4',
        endpoints,
        ports: esPorts,
      });
    } else if (!deepEqual(es.obj['endpoints'], endpoints) || !deepEqual(es.obj['ports'], esPorts)) {
      registry.update(esType, 'default', 'kubernetes', { ...clone(es.obj), endpoints, ports: esPorts });
    }
  }
  const crdT = typeOf(types, 'apiextensions.k8s.io', 'customresourcedefinitions');
  for (const file of o.crdFiles) {
    if (!existsSync(file)) throw new ValidationError('crdManifests', `${file} does not exist`);
    let n = 0;
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      if (doc.errors.length > 0) {
        throw new ValidationError('crdManifests', `${file}: ${doc.errors[0]?.message ?? 'invalid YAML'}`);
      }
      const obj: unknown = doc.toJS({ maxAliasCount: 10_000 });
      if (!isObject(obj) || obj['kind'] !== 'CustomResourceDefinition') continue;
      const name = scalarString(getPath(obj, ['metadata', 'name']));
      const cur = registry.find(CRD_STORAGE, name);
      try {
        if (cur === undefined) registry.create(crdT, undefined, obj);
        else {
          // An update that changes nothing is a no-op (no new resourceVersion, no event).
          const labels = getPath(obj, ['metadata', 'labels']);
          const metadata = {
            ...clone(cur.obj.metadata),
            ...(isObject(labels) ? { labels: labels as Record<string, string> } : {}),
          };
          registry.update(crdT, undefined, name, { ...clone(obj), metadata });
        }
      } catch (err) {
        throw new AntreaError(
          'APISERVER_BOOTSTRAP',
          `${file}: CustomResourceDefinition ${name}: ${err instanceof Error ? err.message : String(err)}`,
          {
            cause: err,
          },
        );
      }
      n++;
    }
    o.logger.debug('installed CRDs', { file, count: n });
  }
}
