/**
 * Shared helpers for integration and e2e tests: what this machine can do, unique names, and private
 * network namespaces and OVS instances that are torn down even when a test fails.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { createCommandRunner, createProcessLauncher } from '../../src/common/util/exec.ts';
import { NetnsManager } from '../../src/platform/linux/netns.ts';
import { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';

export const runner = createCommandRunner();
export const launcher = createProcessLauncher();
export const netns = new NetnsManager(runner);

function which(cmd: string): boolean {
  const path = process.env['PATH'] ?? '';
  return [...path.split(':'), '/usr/sbin', '/sbin'].some((d) => d !== '' && existsSync(join(d, cmd)));
}

/** Why integration tests (root, netns, OVS) cannot run here, or undefined if they can. */
export function integrationSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and OVS)';
  for (const cmd of ['ip', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-ofctl', 'ovsdb-tool']) {
    if (!which(cmd)) return `needs ${cmd} (run .ci/run or scripts/bootstrap.sh to install it)`;
  }
  return undefined;
}

/** A short unique name for namespaces, bridges and ports (≤ 15 characters for interface names). */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

/** A fresh network namespace, deleted at teardown. */
export async function tempNetns(t: Test, prefix = 'ats-'): Promise<string> {
  const name = uniqueName(prefix);
  await netns.ensure(name);
  t.teardown(() => netns.delete(name));
  return name;
}

/** A short private directory under /tmp, removed at teardown (socket paths must stay short). */
export function shortTempDir(t: Test, prefix = 'ats'): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  t.teardown(async () => {
    const { rmSync } = await import('node:fs');
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A private OVS (ovsdb-server + ovs-vswitchd, userspace datapath) in a fresh namespace, all removed at teardown. */
export async function tempOvs(t: Test): Promise<OvsDaemons> {
  const ns = await tempNetns(t);
  const ovs = new OvsDaemons({ runDir: shortTempDir(t, 'ovs'), netns: ns, runner, launcher });
  t.teardown(() => ovs.stop());
  await ovs.start();
  return ovs;
}
