/**
 * The scale scenarios of Antrea's own controller perf test
 * (pkg/controller/networkpolicy/networkpolicy_controller_perf_test.go), generated the same way:
 * random 8-character names, random Pod IPs, Pods spread over 1000 random Node names, every policy
 * with policyTypes [Ingress, Egress] and at most one ingress rule (so each also gets an egress
 * deny-all rule). A seeded generator makes runs repeatable.
 */
import type { Namespace, NetworkPolicy, Pod } from '../../src/common/k8s/objects.ts';

export interface Scenario {
  readonly name: string;
  readonly namespaces: Namespace[];
  readonly policies: NetworkPolicy[];
  readonly pods: Pod[];
  /** Antrea's published figures for this scenario (time in s, Go heap in MB), with their source. */
  readonly antrea: { readonly seconds: number; readonly memoryMB: number | null; readonly source: string };
}

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  private readonly rnd: () => number;
  private uidSeq = 0;
  constructor(seed: number) {
    this.rnd = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  str(n: number): string {
    const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet.charAt(this.int(alphabet.length));
    return s;
  }
  uid(): string {
    const hex = (this.uidSeq++).toString(16).padStart(12, '0');
    return `00000000-0000-4000-8000-${hex}`;
  }
  namespace(name: string, labels: Record<string, string>): Namespace {
    return { metadata: { name, uid: this.uid(), labels } };
  }
  pod(namespace: string, name: string, labels: Record<string, string>): Pod {
    const ip = `${this.int(256)}.${this.int(256)}.${this.int(256)}.${this.int(256)}`;
    return {
      metadata: { namespace, name: name === '' ? `pod-${this.str(8)}` : name, uid: this.uid(), labels },
      spec: { nodeName: `Node-${this.int(1000)}` },
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
    };
  }
  policy(
    namespace: string,
    name: string,
    podSelector: Record<string, string> | undefined,
    ingressPodSelector: Record<string, string> | undefined,
    ingressNamespaceSelector?: Record<string, string>,
  ): NetworkPolicy {
    const peer =
      ingressPodSelector === undefined && ingressNamespaceSelector === undefined
        ? undefined
        : {
            ...(ingressPodSelector === undefined ? {} : { podSelector: { matchLabels: ingressPodSelector } }),
            ...(ingressNamespaceSelector === undefined
              ? {}
              : { namespaceSelector: { matchLabels: ingressNamespaceSelector } }),
          };
    return {
      metadata: { namespace, name: name === '' ? `np-${this.str(8)}` : name, uid: this.uid(), generation: 1 },
      spec: {
        podSelector: podSelector === undefined ? {} : { matchLabels: podSelector },
        policyTypes: ['Ingress', 'Egress'],
        ...(peer === undefined ? {} : { ingress: [{ from: [peer] }] }),
      },
    };
  }
}

function smallNamespaces(seed: number): Scenario {
  const g = new Gen(seed);
  const namespaces: Namespace[] = [];
  const policies: NetworkPolicy[] = [];
  const pods: Pod[] = [];
  for (let i = 0; i < 25_000; i++) {
    const ns = g.str(8);
    namespaces.push(g.namespace(ns, { app: ns }));
    policies.push(g.policy(ns, 'default-deny-all', undefined, undefined));
    policies.push(g.policy(ns, 'np-1', { 'app-1': 'scale-1' }, { 'app-1': 'scale-1' }));
    policies.push(g.policy(ns, 'np-2', { 'app-2': 'scale-2' }, { 'app-2': 'scale-2' }));
    pods.push(g.pod(ns, 'pod1', { 'app-1': 'scale-1' }));
    pods.push(g.pod(ns, 'pod2', { 'app-1': 'scale-1' }));
    pods.push(g.pod(ns, 'pod3', { 'app-2': 'scale-2' }));
    pods.push(g.pod(ns, 'pod4', { 'app-2': 'scale-2' }));
  }
  return {
    name: 'xlarge-small-namespaces',
    namespaces,
    policies,
    pods,
    antrea: {
      seconds: 5.84,
      memoryMB: 1522,
      source: 'TestInitXLargeScaleWithSmallNamespaces, best of 3 recorded runs',
    },
  };
}

function largeNamespaces(seed: number): Scenario {
  const g = new Gen(seed);
  const namespaces: Namespace[] = [];
  const policies: NetworkPolicy[] = [];
  const pods: Pod[] = [];
  for (let n = 0; n < 100; n++) {
    const ns = g.str(8);
    namespaces.push(g.namespace(ns, { app: ns }));
    policies.push(g.policy(ns, 'default-deny-all', undefined, undefined));
    for (let i = 0; i < 100; i++) {
      const labels = { [`app-${i}`]: `scale-${i}` };
      policies.push(g.policy(ns, `np-${i}`, labels, labels));
      for (let j = 0; j < 10; j++) pods.push(g.pod(ns, `pod-${i}-${j}`, labels));
    }
  }
  return {
    name: 'xlarge-large-namespaces',
    namespaces,
    policies,
    pods,
    antrea: {
      seconds: 10,
      memoryMB: null,
      source: 'TestInitXLargeScaleWithLargeNamespaces records no figures; 10 s is its time limit',
    },
  };
}

function oneNamespace(seed: number): Scenario {
  const g = new Gen(seed);
  const ns = g.str(8);
  const labels = { 'app-1': 'scale-1' };
  const policies: NetworkPolicy[] = [];
  const pods: Pod[] = [];
  for (let i = 0; i < 10_000; i++) {
    policies.push(g.policy(ns, '', labels, labels));
    pods.push(g.pod(ns, '', labels));
  }
  return {
    name: 'xlarge-one-namespace',
    namespaces: [g.namespace(ns, { app: ns })],
    policies,
    pods,
    antrea: { seconds: 10.66, memoryMB: 1157, source: 'TestInitXLargeScaleWithOneNamespace' },
  };
}

function netpolPerPod(seed: number): Scenario {
  const g = new Gen(seed);
  const ns = g.str(8);
  const policies: NetworkPolicy[] = [];
  const pods: Pod[] = [];
  for (let i = 0; i < 5_000; i++) {
    const labels1 = { app: `scale-${g.str(8)}` };
    const labels2 = { app: `scale-${g.str(8)}` };
    policies.push(g.policy(ns, '', labels1, labels2));
    policies.push(g.policy(ns, '', labels2, labels1));
    pods.push(g.pod(ns, '', labels1));
    pods.push(g.pod(ns, '', labels2));
  }
  return {
    name: 'xlarge-netpol-per-pod',
    namespaces: [g.namespace(ns, { app: ns })],
    policies,
    pods,
    antrea: {
      seconds: 1.9,
      memoryMB: 170,
      source: 'TestInitXLargeScaleWithNetpolPerPod: reference values from the review of antrea PR #2333',
    },
  };
}

export const SCENARIOS: Readonly<Record<string, (seed: number) => Scenario>> = {
  'xlarge-small-namespaces': smallNamespaces,
  'xlarge-large-namespaces': largeNamespaces,
  'xlarge-one-namespace': oneNamespace,
  'xlarge-netpol-per-pod': netpolPerPod,
};
