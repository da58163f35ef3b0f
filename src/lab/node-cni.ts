/**
 * How a lab Node gets its Pod network: the CNI plugin installed into the Node's CNI directories (and,
 * for Antrea, the agent that serves it). The kubelet stand-in only ever sees the configuration list
 * and the plugins, exactly like a container runtime.
 *
 * - `bridge`: the reference plugins of containernetworking-plugins (bridge + host-local), no OVS and
 *   no agent, with Pod CIDR routes between Nodes set by the lab (kubenet-style). It needs nothing
 *   from antrea-ts, so the lab's own machinery (kubelet, runtime, probes, conformance runner) can be
 *   checked against a known-good plugin, and it is the baseline of the lab benchmark. It enforces
 *   no NetworkPolicy.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabPaths } from './state.ts';

/** Where Debian's containernetworking-plugins are installed. */
export const SYSTEM_CNI_DIR = '/usr/lib/cni';

export interface NodeCniContext {
  readonly nodeName: string;
  readonly netns: string;
  readonly podCIDR: string;
  readonly paths: LabPaths;
}

export interface NodeCni {
  readonly kind: string;
  /**
   * The lab routes each Node's Pod CIDR to it (on the other Nodes of its subnet and on the router),
   * as kubenet's cloud routes do. Antrea routes (or tunnels) by itself, so it leaves this off.
   */
  readonly staticRoutes: boolean;
  /** Directories the runtime searches for plugins (CNI_PATH). */
  binDirs(ctx: NodeCniContext): string[];
  /**
   * Installs the plugin and its configuration list for the Node (and starts what serves it).
   * Resolves once the configuration list is in place. Idempotent.
   */
  start(ctx: NodeCniContext, signal: AbortSignal): Promise<void>;
  /** Stops what `start` started (files stay until the data directory is removed). Idempotent. */
  stop(ctx: NodeCniContext): Promise<void>;
}

function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** The bridge + host-local configuration list of a Node. */
export function bridgeConflist(podCIDR: string, ipamDataDir: string): string {
  return (
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: 'lab-bridge',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: podCIDR }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: ipamDataDir,
            },
          },
        ],
      },
      null,
      2,
    ) + '\n'
  );
}

export const bridgeCni: NodeCni = {
  kind: 'bridge',
  staticRoutes: true,
  binDirs: (ctx) => [ctx.paths.cniBinDir(ctx.nodeName), SYSTEM_CNI_DIR],
  start(ctx) {
    const conf = ctx.paths.cniConfDir(ctx.nodeName);
    mkdirSync(conf, { recursive: true });
    mkdirSync(ctx.paths.cniBinDir(ctx.nodeName), { recursive: true });
    writeAtomically(join(conf, '10-lab-bridge.conflist'), bridgeConflist(ctx.podCIDR, ctx.paths.ipamDir(ctx.nodeName)));
    return Promise.resolve();
  },
  stop: () => Promise.resolve(),
};
