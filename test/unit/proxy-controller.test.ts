/**
 * The proxy controller with in-memory list/watch clients and a fake datapath: nothing is programmed
 * before both informers listed, the first sync then installs what was listed and opens the
 * initial-sync latch, watch events are synced, a failed bundle is retried, and it stops cleanly.
 */
import t from 'tap';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import { PodConnectivityFeature } from '../../src/common/agent/openflow/pod-connectivity.ts';
import { ServiceFeature } from '../../src/common/agent/openflow/service.ts';
import { OfStore, type PlanBuilder } from '../../src/common/agent/openflow/store.ts';
import { ProxyController } from '../../src/common/agent/proxy/controller.ts';
import { Proxier } from '../../src/common/agent/proxy/proxier.ts';
import { Informer, type ListWatchClient, type RawWatchEvent } from '../../src/common/k8s/informer.ts';
import type { EndpointSlice, KubeObject, Service } from '../../src/common/k8s/objects.ts';
import { Latch } from '../../src/common/util/latch.ts';

class MemoryListWatch implements ListWatchClient {
  items: KubeObject[] = [];
  readonly listed = new Latch();
  release = new Latch();
  private emit: RawWatchEvent | undefined;
  async list(): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    await this.release.wait();
    this.listed.open();
    return { items: this.items, resourceVersion: '1' };
  }
  watch(o: { signal: AbortSignal }, onEvent: RawWatchEvent): Promise<void> {
    this.emit = onEvent;
    return new Promise((resolve) => o.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  send(type: string, obj: KubeObject): void {
    this.emit?.(type, obj);
  }
}

const cookies = new CookieAllocator(1);
const gateway = { ofport: 32769, mac: '0a:00:00:00:00:01', ips: ['10.10.1.1'] };

function svc(name: string, ip: string): Service {
  return {
    metadata: { namespace: 'default', name, resourceVersion: '2' },
    spec: { clusterIP: ip, ports: [{ name: 'http', port: 80 }] },
  };
}
function slice(name: string, ip: string): EndpointSlice {
  return {
    metadata: {
      namespace: 'default',
      name: `${name}-1`,
      labels: { 'kubernetes.io/service-name': name },
      resourceVersion: '3',
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ addresses: [ip], nodeName: 'node-1' }],
  };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

t.test('syncs after both lists, follows watch events, retries a failed bundle', async (t) => {
  const feature = new ServiceFeature({ cookies, gateway });
  const pipeline = new RealizedPipeline([
    new PodConnectivityFeature({ cookies, gateway, podCIDRs: ['10.10.1.0/24'] }),
    feature,
  ]);
  const store = new OfStore();
  let changes = 0;
  let failures = 0;
  const datapath = {
    pipeline,
    change(build: (b: PlanBuilder) => void): Promise<void> {
      const plan = store.plan(build);
      if (failures > 0) {
        failures--;
        return Promise.reject(new Error('bundle failed'));
      }
      plan.commit();
      changes++;
      return Promise.resolve();
    },
  };
  const svcs = new MemoryListWatch();
  const slices = new MemoryListWatch();
  svcs.items = [svc('web', '10.96.0.10')];
  slices.items = [slice('web', '10.10.1.5')];
  const proxier = new Proxier({ datapath, feature, nodeName: 'node-1' });
  const controller = new ProxyController({
    proxier,
    services: new Informer<Service>({ resource: 'services', client: svcs }),
    slices: new Informer<EndpointSlice>({ resource: 'endpointslices', client: slices }),
    minSyncIntervalMs: 1,
    retryIntervalMs: 10,
  });
  const ac = new AbortController();
  const running = controller.run(ac.signal);
  svcs.release.open();
  await svcs.listed.wait();
  await new Promise((r) => setTimeout(r, 20));
  t.equal(changes, 0, 'nothing programmed while EndpointSlices are not listed');
  t.notOk(controller.initialSyncDone);
  slices.release.open();
  await controller.waitInitialSync();
  t.equal(changes, 1, 'one bundle for the initial state');
  t.same(
    proxier.installedPorts().map((p) => [p.key, p.cluster.map((e) => e.ip)]),
    [['default/web:http/TCP', ['10.10.1.5']]],
  );

  failures = 1;
  slices.send('MODIFIED', {
    ...slice('web', '10.10.1.6'),
    metadata: { ...slice('web', '').metadata, resourceVersion: '4' },
  });
  await until('the change retried and installed', () => proxier.installedPorts()[0]?.cluster[0]?.ip === '10.10.1.6');
  t.equal(failures, 0, 'the failed bundle was retried');
  svcs.send('DELETED', svc('web', '10.96.0.10'));
  await until('the Service removed', () => proxier.installedPorts().length === 0);
  t.equal(store.allFlows().length, 0);
  t.equal(store.allGroups().length, 0);
  ac.abort();
  await running;
  t.pass('stopped');
});
