/**
 * The proxy controller: runs the Service and EndpointSlice informers, feeds their events to the
 * {@link Proxier} and syncs it (Antrea's BoundedFrequencyRunner): nothing is programmed before both
 * informers delivered their first complete list; afterwards a change is synced at most
 * `minSyncIntervalMs` after the previous sync, and a failed sync is retried after
 * `retryIntervalMs`. {@link ProxyController.waitInitialSync} resolves after the first successful
 * sync (the agent waits for it before deleting the previous run's flows and groups).
 */
import { type Clock, systemClock } from '../../util/clock.ts';
import { errorMessage } from '../../util/errors.ts';
import { Latch } from '../../util/latch.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import type { Runnable } from '../../util/runnable.ts';
import type { Informer } from '../../k8s/informer.ts';
import type { EndpointSlice, Service } from '../../k8s/objects.ts';
import type { Proxier } from './proxier.ts';

export interface ProxyControllerOptions {
  readonly proxier: Proxier;
  readonly services: Informer<Service>;
  readonly slices: Informer<EndpointSlice>;
  /** Minimum time between two syncs (default 100 ms; Antrea uses 1 s). */
  readonly minSyncIntervalMs?: number;
  /** Delay before retrying a failed sync (default 2 s). */
  readonly retryIntervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export class ProxyController implements Runnable {
  private readonly o: ProxyControllerOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly initial = new Latch();
  private wake: (() => void) | undefined;
  private pending = false;

  constructor(o: ProxyControllerOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
    this.logger = (o.logger ?? nullLogger).child({ component: 'proxy' });
  }

  get initialSyncDone(): boolean {
    return this.initial.opened;
  }

  /** Resolves after the first successful sync; rejects if `signal` aborts first. */
  waitInitialSync(signal?: AbortSignal): Promise<void> {
    return this.initial.wait(signal);
  }

  async run(signal: AbortSignal): Promise<void> {
    const { proxier, services, slices } = this.o;
    const offs = [
      services.onEvent((type, svc) => {
        if (type === 'DELETED') proxier.deleteService(svc);
        else proxier.setService(svc);
        this.kick();
      }),
      slices.onEvent((type, slice, old) => {
        if (type === 'DELETED') proxier.deleteSlice(slice);
        else proxier.setSlice(slice, old);
        this.kick();
      }),
    ];
    const informers = [services.run(signal), slices.run(signal)];
    try {
      await Promise.all([services.waitSynced(signal), slices.waitSynced(signal)]);
      this.logger.info('Services and EndpointSlices synced', { services: services.size, slices: slices.size });
      this.pending = true;
      let last = -Infinity;
      const minMs = this.o.minSyncIntervalMs ?? 100;
      const retryMs = this.o.retryIntervalMs ?? 2000;
      while (!signal.aborted) {
        if (!this.pending) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              signal.removeEventListener('abort', done);
              this.wake = undefined;
              resolve();
            };
            this.wake = done;
            signal.addEventListener('abort', done, { once: true });
          });
          if (isAborted(signal)) break;
        }
        const wait = last + minMs - this.clock.now();
        if (wait > 0) await this.clock.sleep(wait, signal);
        this.pending = false;
        last = this.clock.now();
        try {
          const t0 = this.clock.now();
          const r = await proxier.sync();
          if (!this.initial.opened) {
            this.initial.open();
            this.logger.info('initial Service sync done', { ms: this.clock.now() - t0, ...r });
          }
        } catch (err) {
          if (isAborted(signal)) break;
          this.logger.warn('Service sync failed; retrying', { err: errorMessage(err), retryInMs: retryMs });
          this.pending = true;
          await this.clock.sleep(retryMs, signal);
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      for (const off of offs) off();
      await Promise.allSettled(informers);
    }
  }

  private kick(): void {
    this.pending = true;
    this.wake?.();
  }
}

/** Reads `signal.aborted` without the compiler narrowing it across awaits. */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}
