/**
 * The bootstrap RBAC objects kube-apiserver creates at start-up (a subset): cluster-admin for
 * `system:masters`, discovery and public info for everyone, self-reviews for authenticated users,
 * `system:auth-delegator` for delegated authentication (what antrea-controller binds to), and the
 * aggregated user-facing roles view, edit and admin.
 */
import type { JsonObject } from './types.ts';

const BOOT_LABELS = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
const AUTOUPDATE = { 'rbac.authorization.kubernetes.io/autoupdate': 'true' };

function clusterRole(
  name: string,
  rules: JsonObject[],
  extraLabels: Record<string, string> = {},
  aggregate?: string[],
): JsonObject {
  const role: JsonObject = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name, labels: { ...BOOT_LABELS, ...extraLabels }, annotations: AUTOUPDATE },
    rules,
  };
  if (aggregate !== undefined) {
    role['aggregationRule'] = {
      clusterRoleSelectors: aggregate.map((l) => ({ matchLabels: { [`rbac.authorization.k8s.io/${l}`]: 'true' } })),
    };
  }
  return role;
}

function binding(name: string, role: string, groups: string[]): JsonObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: BOOT_LABELS, annotations: AUTOUPDATE },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: groups.map((g) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: g })),
  };
}

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];

/** The bootstrap ClusterRoles and ClusterRoleBindings. */
export function bootstrapPolicy(): JsonObject[] {
  return [
    clusterRole('cluster-admin', [
      { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      { nonResourceURLs: ['*'], verbs: ['*'] },
    ]),
    clusterRole('system:discovery', [
      {
        nonResourceURLs: [
          '/api',
          '/api/*',
          '/apis',
          '/apis/*',
          '/healthz',
          '/livez',
          '/openapi',
          '/openapi/*',
          '/readyz',
          '/version',
          '/version/',
        ],
        verbs: ['get'],
      },
    ]),
    clusterRole('system:public-info-viewer', [
      { nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'], verbs: ['get'] },
    ]),
    clusterRole('system:basic-user', [
      {
        apiGroups: ['authorization.k8s.io'],
        resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'],
        verbs: ['create'],
      },
      { apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'], verbs: ['create'] },
    ]),
    clusterRole('system:auth-delegator', [
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
    ]),
    clusterRole('admin', [], {}, ['aggregate-to-admin']),
    clusterRole('edit', [], { 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' }, ['aggregate-to-edit']),
    clusterRole('view', [], { 'rbac.authorization.k8s.io/aggregate-to-edit': 'true' }, ['aggregate-to-view']),
    clusterRole(
      'system:aggregate-to-view',
      [
        {
          apiGroups: [''],
          resources: [
            'configmaps',
            'endpoints',
            'events',
            'namespaces',
            'pods',
            'pods/status',
            'serviceaccounts',
            'services',
            'services/status',
          ],
          verbs: READ,
        },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: READ },
        { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: READ },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: READ },
      ],
      { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' },
    ),
    clusterRole(
      'system:aggregate-to-edit',
      [
        {
          apiGroups: [''],
          resources: ['configmaps', 'pods', 'secrets', 'serviceaccounts', 'services'],
          verbs: [...READ, ...WRITE],
        },
        { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: [...READ, ...WRITE] },
        { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: [...READ, ...WRITE] },
      ],
      { 'rbac.authorization.k8s.io/aggregate-to-edit': 'true' },
    ),
    clusterRole(
      'system:aggregate-to-admin',
      [
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings', 'roles'], verbs: [...READ, ...WRITE] },
        { apiGroups: ['authorization.k8s.io'], resources: ['localsubjectaccessreviews'], verbs: ['create'] },
      ],
      { 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' },
    ),
    binding('cluster-admin', 'cluster-admin', ['system:masters']),
    binding('system:discovery', 'system:discovery', ['system:authenticated']),
    binding('system:basic-user', 'system:basic-user', ['system:authenticated']),
    binding('system:public-info-viewer', 'system:public-info-viewer', [
      'system:authenticated',
      'system:unauthenticated',
    ]),
  ];
}
