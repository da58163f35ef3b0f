/**
 * OpenFlow port numbers the agent chooses for Pod ports (the OVS Interface's `ofport_request`), so a
 * Pod's flows can be installed while its port is being created instead of after ovs-vswitchd
 * reported the number it picked.
 *
 * Pods get numbers from the upper half of the OpenFlow port range: ovs-vswitchd assigns numbers to
 * ports without a request only from the lower half (1-32767, "to reserve the upper half for
 * assignment by controllers"), so a port added without a request can never take a Pod's number.
 * The first numbers of the upper half stay free for the Node's fixed ports (Antrea's uplink and
 * host interface use 32769 and 32770). Numbers go round-robin from the highest one in use, so a
 * number freed by a deleted Pod is reused as late as possible (ovs-vswitchd's own policy, against
 * stale flows).
 */
import { OFPORT_REQUEST_MAX } from '../../ovs/ovsdb/bridge.ts';
import { AntreaError } from '../../util/errors.ts';

/** The lowest ofport given to a Pod. */
export const POD_OFPORT_MIN = 32800;
/** The highest one (the highest ofport_request OVS accepts). */
export const POD_OFPORT_MAX = OFPORT_REQUEST_MAX;

export class OfportExhaustedError extends AntreaError<'OFPORT_EXHAUSTED'> {}

export interface OfportAllocatorOptions {
  /** The numbers taken on the bridge now: every interface's ofport and ofport_request. */
  readonly inUse: () => Iterable<number | undefined>;
  readonly min?: number;
  readonly max?: number;
}

export class OfportAllocator {
  private readonly inUse: () => Iterable<number | undefined>;
  private readonly min: number;
  private readonly max: number;
  /** Numbers handed out whose port may not be in OVSDB yet. */
  private readonly reserved = new Set<number>();
  private last: number | undefined;

  constructor(opts: OfportAllocatorOptions) {
    this.inUse = opts.inUse;
    this.min = opts.min ?? POD_OFPORT_MIN;
    this.max = opts.max ?? POD_OFPORT_MAX;
  }

  /**
   * A number in [min, max] that no interface on the bridge uses or requests and that is not
   * reserved; it stays reserved until {@link release}. Throws OFPORT_EXHAUSTED when none is left.
   */
  allocate(): number {
    const taken = new Set<number>(this.reserved);
    let highest: number | undefined;
    for (const n of this.inUse()) {
      if (n === undefined || n < this.min || n > this.max) continue;
      taken.add(n);
      if (highest === undefined || n > highest) highest = n;
    }
    // Continue after the last number given, or after the highest in use (after a restart).
    let next = (this.last ?? highest ?? this.min - 1) + 1;
    const size = this.max - this.min + 1;
    for (let i = 0; i < size; i++, next++) {
      if (next > this.max) next = this.min;
      if (taken.has(next)) continue;
      this.reserved.add(next);
      this.last = next;
      return next;
    }
    throw new OfportExhaustedError('OFPORT_EXHAUSTED', `no free OpenFlow port number in ${this.min}-${this.max}`, {
      details: { min: this.min, max: this.max },
    });
  }

  /** Ends the reservation of `n` (its port now exists in OVSDB with this request, or never will). */
  release(n: number): void {
    this.reserved.delete(n);
  }
}
