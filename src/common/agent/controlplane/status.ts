/**
 * Reports, per policy, which generation this Node realized (or failed to realize) to the controller
 * (`POST networkpolicies/{name}/status` with one NetworkPolicyNodeStatus, as Antrea's agent). Reports
 * are queued and coalesced: only the latest one per policy is sent; a failed send is retried with
 * backoff; a report for a policy the controller no longer has (404) is dropped; a report identical
 * to the last one sent for that policy is not sent again.
 */
import { CONTENT_TYPES, ControlplaneEncoder, type Encoding } from '../../apis/controlplane/codec.ts';
import type { NetworkPolicyStatus } from '../../apis/controlplane/types.ts';
import { Backoff } from '../../util/backoff.ts';
import { type Clock, systemClock } from '../../util/clock.ts';
import { errorMessage } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import { isAborted, type Runnable } from '../../util/runnable.ts';
import { ControllerHttpError, type ControllerEndpoint, controllerRequest } from './client.ts';

export interface RealizationReport {
  /** The internal policy's name. */
  readonly policy: string;
  readonly generation: number;
  /** Set when realization failed. */
  readonly failure?: string;
}

export interface StatusReporterOptions {
  readonly endpoint: ControllerEndpoint;
  readonly nodeName: string;
  readonly encoding?: Encoding;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly backoff?: Backoff;
}

export class StatusReporter implements Runnable {
  private readonly o: StatusReporterOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly encoder = new ControlplaneEncoder();
  private readonly queued = new Map<string, RealizationReport>();
  private readonly sent = new Map<string, string>();
  private wake: (() => void) | undefined;
  /** Reports sent successfully. */
  delivered = 0;

  constructor(opts: StatusReporterOptions) {
    this.o = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? nullLogger).child({ component: 'status-reporter', node: opts.nodeName });
  }

  /** Queues a report (replacing a queued one for the same policy). */
  report(r: RealizationReport): void {
    if (this.sent.get(r.policy) === fingerprint(r)) {
      this.queued.delete(r.policy);
      return;
    }
    this.queued.set(r.policy, r);
    this.wake?.();
  }

  /** Forgets a deleted policy (nothing more is sent for it). */
  forget(policy: string): void {
    this.queued.delete(policy);
    this.sent.delete(policy);
  }

  /** Number of reports waiting to be sent. */
  get pending(): number {
    return this.queued.size;
  }

  async run(signal: AbortSignal): Promise<void> {
    const backoff = this.o.backoff ?? new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 0.2 });
    while (!signal.aborted) {
      const next = this.queued.values().next();
      if (next.done === true) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            this.wake = undefined;
            signal.removeEventListener('abort', done);
            resolve();
          };
          this.wake = done;
          signal.addEventListener('abort', done, { once: true });
        });
        continue;
      }
      const r = next.value;
      this.queued.delete(r.policy);
      try {
        await this.send(r, signal);
        this.sent.set(r.policy, fingerprint(r));
        this.delivered++;
        backoff.reset();
      } catch (err) {
        if (isAborted(signal)) return;
        if (err instanceof ControllerHttpError && err.status === 404) {
          this.log.debug('policy gone, report dropped', { policy: r.policy });
          continue;
        }
        // Keep the newest report for that policy.
        if (!this.queued.has(r.policy)) this.queued.set(r.policy, r);
        const delay = backoff.next();
        this.log.warn('status report failed, retrying', {
          policy: r.policy,
          err: errorMessage(err),
          retryInMs: Math.round(delay),
        });
        try {
          await this.clock.sleep(delay, signal);
        } catch {
          return;
        }
      }
    }
  }

  private async send(r: RealizationReport, signal: AbortSignal): Promise<void> {
    const encoding = this.o.encoding ?? 'protobuf';
    const status: NetworkPolicyStatus = {
      metadata: { name: r.policy },
      nodes: [
        {
          nodeName: this.o.nodeName,
          generation: r.generation,
          ...(r.failure === undefined ? {} : { realizationFailure: true, message: r.failure }),
        },
      ],
    };
    await controllerRequest(this.o.endpoint, {
      method: 'POST',
      path: `/apis/controlplane.antrea.io/v1beta2/networkpolicies/${encodeURIComponent(r.policy)}/status`,
      headers: { 'Content-Type': CONTENT_TYPES[encoding], Accept: CONTENT_TYPES[encoding] },
      body: this.encoder.object(encoding, 'NetworkPolicyStatus', status),
      signal,
    });
  }
}

function fingerprint(r: RealizationReport): string {
  return `${r.generation}|${r.failure ?? ''}`;
}
