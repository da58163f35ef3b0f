/**
 * OpenFlow port numbers as ovs-vswitchd assigns them, read from the OVSDB monitor cache. On Windows
 * a Pod's OVS port only gets its ofport once HNS has attached the endpoint and its vNIC appears, so
 * the CNI server answers ADD first and installs the Pod's flows when the ofport arrives (Antrea does
 * this from the OpenFlow PortStatus message; the Interface row's `ofport` column carries the same
 * fact and is already monitored).
 */
import type { CachedRow, OvsdbCacheView } from '../../ovs/ovsdb/cache.ts';
import { optionalNumber } from '../../ovs/ovsdb/values.ts';

/** An interface's ofport changed: a number > 0 once assigned, -1 when it failed, undefined when gone. */
export interface OfportEvent {
  readonly port: string;
  readonly ofport: number | undefined;
}

/** A source of ofport changes. `subscribe` returns the function that unsubscribes. */
export interface OfportEvents {
  subscribe(listener: (e: OfportEvent) => void): () => void;
}

function ofportOf(row: CachedRow | undefined): number | undefined {
  return optionalNumber(row?.columns['ofport']);
}

function nameOf(row: CachedRow | undefined): string | undefined {
  const n = row?.columns['name'];
  return typeof n === 'string' ? n : undefined;
}

/**
 * Ofport changes of every Interface row in the cache: one event per insert with an ofport, per
 * modify that changes it, and per delete (ofport undefined). A resync after a reconnect reports the
 * difference from before, as any other update.
 */
export function ovsdbOfportEvents(cache: OvsdbCacheView): OfportEvents {
  return {
    subscribe(listener) {
      return cache.subscribe((update) => {
        for (const c of update.changes) {
          if (c.table !== 'Interface') continue;
          const port = nameOf(c.new) ?? nameOf(c.old);
          if (port === undefined) continue;
          if (c.kind === 'delete') {
            listener({ port, ofport: undefined });
            continue;
          }
          const before = ofportOf(c.old);
          const after = ofportOf(c.new);
          if (c.kind === 'insert' ? after !== undefined : before !== after) listener({ port, ofport: after });
        }
      });
    },
  };
}
