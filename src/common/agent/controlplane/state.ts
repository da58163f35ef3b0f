/**
 * The agent's copy of what the controller sent it: per resource, every object by name, kept current
 * by the watch events (NetworkPolicies replaced whole; AddressGroup and AppliedToGroup patches
 * applied as member additions and removals, members compared by Antrea's GroupMember key).
 *
 * An event that does not fit the state (a patch or deletion of an unknown object, an ADDED for a
 * known one, an event of the wrong kind) throws a {@link StreamInconsistentError}: the watcher then
 * drops the watch and starts over with a full replace, as Antrea's agent does.
 */
import type { ControlplaneResource } from '../../apis/controlplane/codec.ts';
import {
  type AddressGroup,
  type AddressGroupPatch,
  type AppliedToGroup,
  type AppliedToGroupPatch,
  type GroupMember,
  groupMemberKey,
  type NetworkPolicy,
  type ObjectMeta,
} from '../../apis/controlplane/types.ts';
import { AntreaError } from '../../util/errors.ts';

/** The object type of each resource. */
export interface ResourceObjects {
  networkpolicies: NetworkPolicy;
  addressgroups: AddressGroup;
  appliedtogroups: AppliedToGroup;
}

/** What a MODIFIED event of each resource carries. */
export interface ResourceModifications {
  networkpolicies: NetworkPolicy;
  addressgroups: AddressGroupPatch;
  appliedtogroups: AppliedToGroupPatch;
}

/** One incremental event of a resource, as applied after the initial replace. */
export type ResourceEvent<R extends ControlplaneResource = ControlplaneResource> = {
  [K in R]:
    | { readonly resource: K; readonly type: 'ADDED'; readonly object: ResourceObjects[K] }
    | { readonly resource: K; readonly type: 'MODIFIED'; readonly object: ResourceModifications[K] }
    | { readonly resource: K; readonly type: 'DELETED'; readonly object: ResourceObjects[K] };
}[R];

export class StreamInconsistentError extends AntreaError<'WATCH_INCONSISTENT'> {
  constructor(message: string) {
    super('WATCH_INCONSISTENT', message);
  }
}

interface GroupEntry {
  readonly metadata: ObjectMeta;
  readonly members: Map<string, GroupMember>;
}

/** The objects of one resource. */
export class ResourceState<R extends ControlplaneResource> {
  readonly resource: R;
  private policies = new Map<string, NetworkPolicy>();
  private groups = new Map<string, GroupEntry>();

  constructor(resource: R) {
    this.resource = resource;
  }

  get size(): number {
    return this.resource === 'networkpolicies' ? this.policies.size : this.groups.size;
  }

  /** Replaces everything with `objects`. */
  replace(objects: readonly ResourceObjects[R][]): void {
    if (this.resource === 'networkpolicies') {
      this.policies = new Map((objects as readonly NetworkPolicy[]).map((p) => [p.metadata.name, p]));
      return;
    }
    this.groups = new Map(
      (objects as readonly (AddressGroup | AppliedToGroup)[]).map((g) => [
        g.metadata.name,
        { metadata: g.metadata, members: new Map(g.groupMembers.map((m) => [groupMemberKey(m), m])) },
      ]),
    );
  }

  /** Applies one event; throws a StreamInconsistentError when it does not fit. */
  apply(ev: ResourceEvent<R>): void {
    if (ev.resource !== this.resource) {
      throw new StreamInconsistentError(`a ${ev.resource} event on the ${this.resource} stream`);
    }
    const name = ev.object.metadata.name;
    if (this.resource === 'networkpolicies') {
      const known = this.policies.has(name);
      if (ev.type === 'DELETED') {
        if (!known) throw new StreamInconsistentError(`DELETED for unknown NetworkPolicy ${name}`);
        this.policies.delete(name);
      } else {
        if (ev.type === 'ADDED' && known) throw new StreamInconsistentError(`ADDED for known NetworkPolicy ${name}`);
        if (ev.type === 'MODIFIED' && !known)
          throw new StreamInconsistentError(`MODIFIED for unknown NetworkPolicy ${name}`);
        this.policies.set(name, ev.object as NetworkPolicy);
      }
      return;
    }
    const entry = this.groups.get(name);
    switch (ev.type) {
      case 'ADDED': {
        if (entry !== undefined) throw new StreamInconsistentError(`ADDED for known ${this.resource} ${name}`);
        const g = ev.object as AddressGroup | AppliedToGroup;
        this.groups.set(name, {
          metadata: g.metadata,
          members: new Map(g.groupMembers.map((m) => [groupMemberKey(m), m])),
        });
        return;
      }
      case 'MODIFIED': {
        if (entry === undefined) throw new StreamInconsistentError(`patch for unknown ${this.resource} ${name}`);
        const p = ev.object as AddressGroupPatch | AppliedToGroupPatch;
        for (const m of p.removedGroupMembers) entry.members.delete(groupMemberKey(m));
        for (const m of p.addedGroupMembers) entry.members.set(groupMemberKey(m), m);
        return;
      }
      case 'DELETED':
        if (entry === undefined) throw new StreamInconsistentError(`DELETED for unknown ${this.resource} ${name}`);
        this.groups.delete(name);
    }
  }

  get(name: string): ResourceObjects[R] | undefined {
    if (this.resource === 'networkpolicies') return this.policies.get(name) as ResourceObjects[R] | undefined;
    const g = this.groups.get(name);
    return g === undefined
      ? undefined
      : ({ metadata: g.metadata, groupMembers: [...g.members.values()] } as unknown as ResourceObjects[R]);
  }

  /** Every object, sorted by name. */
  list(): ResourceObjects[R][] {
    const names = [...(this.resource === 'networkpolicies' ? this.policies.keys() : this.groups.keys())].sort();
    return names.map((n) => this.get(n) as ResourceObjects[R]);
  }
}
