/**
 * The agent's side of the controller connection (the interface the agent's policy controller uses):
 *
 * - {@link PolicyWatcher}: `run(signal)` watches networkpolicies, addressgroups and appliedtogroups
 *   for one Node and calls a {@link ControlplaneHandler}: `replace(resource, objects, source)` after
 *   each complete initial set (or from the on-disk snapshot when the controller is unreachable at
 *   start), then `event(ev)` per change. `waitSynced()` resolves once every resource had a replace
 *   (gate Pod networking on it); `status()` / `onStatus()` report the connection (Antrea's
 *   ControllerConnectionUp) and the snapshot's state.
 * - {@link SnapshotStore}: the atomic, checksummed on-disk copy of the last complete set.
 * - {@link StatusReporter}: reports per-policy realization (the generation realized) to the
 *   controller.
 * - {@link ControllerEndpoint}: where the controller is, the CA bundle and the token (functions, so
 *   rotation needs no restart); {@link tokenFromFile} reads a projected token.
 */
export {
  type ControllerEndpoint,
  ControllerHttpError,
  ControllerUnreachableError,
  controllerRequest,
  tokenFromFile,
} from './client.ts';
export { SnapshotError, type SnapshotLoad, type SnapshotObjects, SnapshotStore } from './snapshot.ts';
export {
  type ResourceEvent,
  type ResourceModifications,
  type ResourceObjects,
  ResourceState,
  StreamInconsistentError,
} from './state.ts';
export { type RealizationReport, StatusReporter, type StatusReporterOptions } from './status.ts';
export {
  type ControlplaneHandler,
  PolicyWatcher,
  type PolicyWatcherOptions,
  type ReplaceSource,
  type ResourceConnection,
  type ResourceStatus,
  type SnapshotState,
  WatchErrorEvent,
  type WatcherStatus,
} from './watcher.ts';
