/**
 * A policy source reading this Node's controlplane objects from a JSON file
 * `{"networkpolicies": [...], "addressgroups": [...], "appliedtogroups": [...]}` (the v1beta2 objects
 * in their JSON form, as the controller serves them). It is the agent's source when no controller
 * connection is configured (policy simulation, tests, and until the controlplane watcher is wired in
 * the agent command): each time the file changes it hands the complete set to the handler as three
 * `replace` calls, exactly as the watcher does after a (re)connection.
 *
 * Fail closed: while the file is missing or invalid nothing is replaced, so a fresh agent never
 * realizes its initial policies (Pod networking stays blocked) and a running one keeps enforcing the
 * last valid set. The error is logged once per distinct problem.
 */
import { readFile, stat } from 'node:fs/promises';
import type { AddressGroup, AppliedToGroup, NetworkPolicy } from '../../apis/controlplane/types.ts';
import { type Clock, systemClock } from '../../util/clock.ts';
import { errorMessage, ValidationError } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import type { Runnable } from '../../util/runnable.ts';
import type { PolicyEventHandler } from './controller.ts';

export interface PolicyFileObjects {
  readonly networkpolicies: NetworkPolicy[];
  readonly addressgroups: AddressGroup[];
  readonly appliedtogroups: AppliedToGroup[];
}

function checkNamed(list: unknown, field: string, check: (o: Record<string, unknown>, f: string) => void): void {
  if (!Array.isArray(list)) throw new ValidationError(field, 'must be a list');
  const seen = new Set<string>();
  list.forEach((o: unknown, i) => {
    const f = `${field}[${i}]`;
    if (typeof o !== 'object' || o === null) throw new ValidationError(f, 'must be an object');
    const meta = (o as { metadata?: { name?: unknown } }).metadata;
    if (typeof meta?.name !== 'string' || meta.name === '')
      throw new ValidationError(`${f}.metadata.name`, 'is required');
    if (seen.has(meta.name)) throw new ValidationError(`${f}.metadata.name`, `"${meta.name}" appears twice`);
    seen.add(meta.name);
    check(o as Record<string, unknown>, f);
  });
}

/** Parses and checks the file's content; throws a ValidationError naming the bad field. */
export function parsePolicyFile(text: string): PolicyFileObjects {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('policyFile', `not JSON: ${errorMessage(err)}`);
  }
  if (typeof doc !== 'object' || doc === null) throw new ValidationError('policyFile', 'must be an object');
  const d = doc as Record<string, unknown>;
  const groups = (o: Record<string, unknown>, f: string): void => {
    if (!Array.isArray(o['groupMembers'])) throw new ValidationError(`${f}.groupMembers`, 'must be a list');
  };
  checkNamed(d['networkpolicies'] ?? [], 'networkpolicies', (o, f) => {
    if (!Array.isArray(o['rules'])) throw new ValidationError(`${f}.rules`, 'must be a list');
    if (!Array.isArray(o['appliedToGroups'])) throw new ValidationError(`${f}.appliedToGroups`, 'must be a list');
    (o['rules'] as unknown[]).forEach((r, i) => {
      const rr = r as Record<string, unknown>;
      if (rr['direction'] !== 'In' && rr['direction'] !== 'Out')
        throw new ValidationError(`${f}.rules[${i}].direction`, 'must be In or Out');
      for (const side of ['from', 'to']) {
        const peer = rr[side] as Record<string, unknown> | undefined;
        if (typeof peer !== 'object' || !Array.isArray(peer['addressGroups']) || !Array.isArray(peer['ipBlocks']))
          throw new ValidationError(`${f}.rules[${i}].${side}`, 'needs addressGroups and ipBlocks lists');
      }
      if (!Array.isArray(rr['services'])) throw new ValidationError(`${f}.rules[${i}].services`, 'must be a list');
    });
  });
  checkNamed(d['addressgroups'] ?? [], 'addressgroups', groups);
  checkNamed(d['appliedtogroups'] ?? [], 'appliedtogroups', groups);
  return {
    networkpolicies: (d['networkpolicies'] ?? []) as NetworkPolicy[],
    addressgroups: (d['addressgroups'] ?? []) as AddressGroup[],
    appliedtogroups: (d['appliedtogroups'] ?? []) as AppliedToGroup[],
  };
}

export interface FilePolicySourceOptions {
  readonly path: string;
  readonly handler: PolicyEventHandler;
  /** How often the file's modification time is checked (default 200 ms). */
  readonly pollMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export class FilePolicySource implements Runnable {
  private readonly o: FilePolicySourceOptions;
  private readonly log: Logger;
  private lastProblem: string | undefined;
  /** Complete sets handed over. */
  loads = 0;

  constructor(o: FilePolicySourceOptions) {
    this.o = o;
    this.log = (o.logger ?? nullLogger).child({ component: 'policy-file', path: o.path });
  }

  private seen = '';

  /** Checks the file once and hands a changed, valid set over. Never throws. */
  async poll(): Promise<void> {
    try {
      const st = await stat(this.o.path);
      const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      if (stamp === this.seen) return;
      const objects = parsePolicyFile(await readFile(this.o.path, 'utf8'));
      await this.o.handler.replace('networkpolicies', objects.networkpolicies, 'file');
      await this.o.handler.replace('addressgroups', objects.addressgroups, 'file');
      await this.o.handler.replace('appliedtogroups', objects.appliedtogroups, 'file');
      this.seen = stamp;
      this.loads++;
      this.lastProblem = undefined;
      this.log.info('policies loaded', { policies: objects.networkpolicies.length });
    } catch (err) {
      const problem = errorMessage(err);
      if (problem !== this.lastProblem)
        this.log.warn('policy file unusable; keeping the last valid set', { error: problem });
      this.lastProblem = problem;
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    const clock = this.o.clock ?? systemClock;
    while (!signal.aborted) {
      await this.poll();
      try {
        await clock.sleep(this.o.pollMs ?? 200, signal);
      } catch {
        return;
      }
    }
  }
}
