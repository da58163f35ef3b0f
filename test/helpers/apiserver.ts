/**
 * Helpers for the embedded API server's tests: an in-process core on a fake clock, assertions on
 * Kubernetes Status errors, and a memory sink that records watch output.
 */
import type { Test } from 'tap';
import { nullLogger } from '../../src/common/util/log.ts';
import {
  bootstrapObjects,
  createApiCore,
  typeOf,
  type ApiCore,
  type ApiCoreOptions,
} from '../../src/lab/apiserver/core.ts';
import type { ResourceType } from '../../src/lab/apiserver/resources.ts';
import { DEFAULT_CRD_MANIFEST } from '../../src/lab/apiserver/server.ts';
import { ApiError } from '../../src/lab/apiserver/status.ts';
import { scalarString } from '../../src/lab/apiserver/types.ts';
import type { WatchSink } from '../../src/lab/apiserver/watch.ts';
import { FakeClock } from './fake-clock.ts';

export interface TestCore extends ApiCore {
  readonly clock: FakeClock;
  /** The served type of `group`/`resource`. */
  type(group: string, resource: string): ResourceType;
}

/** A bootstrapped core (namespaces, RBAC, Antrea CRDs) on a fake clock; controllers stopped at teardown. */
export async function testCore(t: Test, o: Partial<ApiCoreOptions> = {}): Promise<TestCore> {
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 0));
  const core = createApiCore({ clock, logger: nullLogger, ...o });
  core.controllers.start();
  bootstrapObjects(core, {
    advertiseAddress: '127.0.0.1',
    port: 6443,
    crdFiles: [DEFAULT_CRD_MANIFEST],
    logger: nullLogger,
  });
  t.teardown(() => core.controllers.stop());
  await core.controllers.idle();
  return { ...core, clock, type: (g, r) => typeOf(core.types, g, r) };
}

/** Asserts that `fn` throws an ApiError with this HTTP code (and reason), returning it. */
export function expectApiError(
  t: Test,
  fn: () => unknown,
  code: number,
  reason?: string,
  msg?: string,
): ApiError | undefined {
  try {
    fn();
  } catch (err) {
    const ok = err instanceof ApiError && err.httpCode === code && (reason === undefined || err.reason === reason);
    t.ok(ok, msg ?? `ApiError ${code}${reason === undefined ? '' : ` ${reason}`}`, {
      got: err instanceof ApiError ? err.toStatus() : String(err),
    });
    return err instanceof ApiError ? err : undefined;
  }
  t.fail(msg ?? `expected ApiError ${code}, nothing thrown`);
  return undefined;
}

/** Like expectApiError for promises. */
export async function expectApiErrorAsync(
  t: Test,
  p: Promise<unknown>,
  code: number,
  reason?: string,
  msg?: string,
): Promise<ApiError | undefined> {
  try {
    await p;
  } catch (err) {
    const ok = err instanceof ApiError && err.httpCode === code && (reason === undefined || err.reason === reason);
    t.ok(ok, msg ?? `ApiError ${code}`, { got: err instanceof ApiError ? err.toStatus() : String(err) });
    return err instanceof ApiError ? err : undefined;
  }
  t.fail(msg ?? `expected ApiError ${code}, nothing thrown`);
  return undefined;
}

/** A watch sink that keeps the events written to it. */
export class MemorySink implements WatchSink {
  readonly chunks: Buffer[] = [];
  ended = false;
  writableLength = 0;
  /** When set, writes report backpressure and are kept as pending. */
  blocked = false;
  private drainFns: (() => void)[] = [];

  write(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    if (this.blocked) this.writableLength += chunk.length;
    return !this.blocked;
  }
  end(): void {
    this.ended = true;
  }
  once(_event: 'drain', listener: () => void): unknown {
    this.drainFns.push(listener);
    return this;
  }
  unblock(): void {
    this.blocked = false;
    this.writableLength = 0;
    for (const f of this.drainFns.splice(0)) f();
  }
  /** The events written so far, parsed. */
  get events(): { type: string; object: Record<string, unknown> & { metadata?: Record<string, unknown> } }[] {
    return Buffer.concat(this.chunks)
      .toString('utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { type: string; object: Record<string, unknown> });
  }
  /** `TYPE name@rv` for each event (compact assertions). */
  get summary(): string[] {
    return this.events.map((e) => {
      const m = e.object['metadata'] ?? {};
      return `${e.type} ${scalarString(m['name'] ?? e.object['reason'])}@${scalarString(m['resourceVersion'])}`;
    });
  }
}

/** Lets setImmediate callbacks (watch flushes, controller work) run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}
