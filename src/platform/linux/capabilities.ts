/**
 * What the Linux strategy supports and where it keeps things, as plain data: importing this module
 * loads no native addon (netlink, koffi), so config validation and the unit tests can use it on any
 * OS.
 */
import { capabilitiesFrom } from '../../common/host/platform.ts';

/**
 * What the Linux strategy supports (Antrea's Linux support minus what antrea-ts lacks yet).
 * networkPolicyOnly is CNI chaining after a primary plugin (LinuxPodInterfaces.chaining).
 */
export const LINUX_CAPABILITIES = capabilitiesFrom('linux', {
  datapathTypes: ['system', 'netdev'],
  trafficEncapModes: ['encap', 'noEncap', 'hybrid', 'networkPolicyOnly'],
  // OVS's userspace datapath has no STT.
  tunnelTypes: { system: ['geneve', 'vxlan', 'gre', 'stt'], netdev: ['geneve', 'vxlan', 'gre'] },
  encryptionModes: ['none'],
  unsupportedFeatureGates: [],
  tunnelNeedsLocalIp: false,
});

/** Antrea's Linux default locations. */
export const LINUX_PATHS = {
  ovsRunDir: '/var/run/openvswitch',
  cniSocket: '/var/run/antrea/cni.sock',
  stateDir: '/var/run/antrea',
  cniBinDir: '/opt/cni/bin',
  cniConfDir: '/etc/cni/net.d',
} as const;
