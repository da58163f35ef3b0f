/**
 * The error codes the platform strategies raise, so the common core maps them (to CNI codes, logs,
 * conditions) without knowing the OS.
 */
import { AntreaError } from '../util/errors.ts';

export type HostNetworkErrorCode =
  /** A named or expected host interface does not exist (or did not appear in time). */
  | 'HOST_INTERFACE_NOT_FOUND'
  /** An OS call failed (netlink, sysctl, HNS, PowerShell...). */
  | 'HOST_OPERATION_FAILED';

export class HostNetworkError extends AntreaError<HostNetworkErrorCode> {}

export type PodInterfaceErrorCode =
  /** The Pod's network namespace (or Windows compartment) does not exist. */
  | 'POD_NETNS_NOT_FOUND'
  /** The container interface already exists in the namespace, or the host-side name is taken. */
  | 'POD_INTERFACE_EXISTS'
  /** The interface another plugin should have made (CNI chaining) does not exist. */
  | 'POD_INTERFACE_NOT_FOUND'
  /** Creating or configuring the interface failed. */
  | 'POD_INTERFACE_FAILED';

export class PodInterfaceError extends AntreaError<PodInterfaceErrorCode> {}

/** A {@link PodInterfaceError} with `cause` attached when there is one. */
export function podInterfaceError(code: PodInterfaceErrorCode, message: string, cause?: unknown): PodInterfaceError {
  return new PodInterfaceError(code, message, cause === undefined ? {} : { cause });
}
