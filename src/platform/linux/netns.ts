/**
 * Linux network namespaces by name (`ip netns`, i.e. bind mounts under /run/netns).
 */
import { existsSync, readdirSync } from 'node:fs';
import type { CommandRunner, ExecOptions, ExecResult } from '../../common/util/exec.ts';
import { ValidationError } from '../../common/util/errors.ts';

export const NETNS_DIR = '/run/netns';

/** Valid `ip netns` names: no slashes, not "." or "..", at most 64 characters. */
export function validateNetnsName(name: string, field = 'netns'): void {
  if (name === '' || name === '.' || name === '..' || name.length > 64 || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new ValidationError(field, `invalid network namespace name "${name}"`);
  }
}

/** Path of a named namespace. */
export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

/** A runner whose commands run inside the named namespace (`ip netns exec NAME ...`). */
export function netnsRunner(runner: CommandRunner, netns: string): CommandRunner {
  validateNetnsName(netns);
  return {
    run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
      return runner.run('ip', ['netns', 'exec', netns, cmd, ...args], opts);
    },
  };
}

/** The argv prefix that runs a command inside `netns` (or nothing for the current namespace). */
export function netnsExecPrefix(netns: string | undefined): string[] {
  if (netns === undefined) return [];
  validateNetnsName(netns);
  return ['ip', 'netns', 'exec', netns];
}

export class NetnsManager {
  private readonly runner: CommandRunner;

  constructor(runner: CommandRunner) {
    this.runner = runner;
  }

  /** Creates the namespace (with its loopback up). Idempotent: an existing namespace is kept as is. */
  async ensure(name: string): Promise<void> {
    validateNetnsName(name);
    if (!existsSync(netnsPath(name))) {
      await this.runner.run('ip', ['netns', 'add', name]);
    }
    await this.runner.run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /** Deletes the namespace. Idempotent: an absent namespace is not an error. */
  async delete(name: string): Promise<void> {
    validateNetnsName(name);
    if (!existsSync(netnsPath(name))) return;
    await this.runner.run('ip', ['netns', 'delete', name]);
  }

  exists(name: string): boolean {
    return existsSync(netnsPath(name));
  }

  /** Names of all named namespaces. */
  list(): string[] {
    return existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR) : [];
  }
}
