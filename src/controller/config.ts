/**
 * antrea-controller.conf (YAML, Antrea's keys and defaults, see reference §7.1). Keys of features
 * antrea-ts does not implement (featureGates, nodeIPAM, ipsecCSRSigner, multicluster, clientCAFile)
 * are accepted and ignored, as Antrea's lenient unmarshal would for unknown keys; a key of a known
 * name with a wrong type or value is refused with a ValidationError naming it.
 */
import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../common/util/errors.ts';

export const DEFAULT_API_PORT = 10349;

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

export interface ControllerConfig {
  /** clientConnection.kubeconfig: empty = in-cluster / default places. */
  readonly kubeconfig: string;
  /** Overrides the API server address of the kubeconfig (host, host:port or URL). */
  readonly kubeAPIServerOverride: string;
  readonly apiPort: number;
  /** Beyond Antrea: the address the API listens on (default all). */
  readonly apiBindAddress: string;
  readonly enablePrometheusMetrics: boolean;
  /** true: self-signed CA kept in Secret antrea-controller-tls; false: files in `tlsCertDir`. */
  readonly selfSignedCert: boolean;
  /** Beyond Antrea's flags: where the provided certificate is mounted. */
  readonly tlsCertDir: string;
  readonly tlsCipherSuites: string;
  readonly tlsMinVersion: TlsMinVersion | undefined;
  /**
   * Beyond Antrea: a token of an agent identity without a Node binding may watch any Node
   * (default false: such tokens are refused on per-Node streams).
   */
  readonly allowUnboundAgentTokens: boolean;
}

export const DEFAULT_CONTROLLER_CONFIG: ControllerConfig = {
  kubeconfig: '',
  kubeAPIServerOverride: '',
  apiPort: DEFAULT_API_PORT,
  apiBindAddress: '0.0.0.0',
  enablePrometheusMetrics: true,
  selfSignedCert: true,
  tlsCertDir: '/var/run/antrea/antrea-controller-tls',
  tlsCipherSuites: '',
  tlsMinVersion: undefined,
  allowUnboundAgentTokens: false,
};

const TLS_VERSIONS: Readonly<Record<string, TlsMinVersion | 'unsupported'>> = {
  VersionTLS10: 'unsupported',
  VersionTLS11: 'unsupported',
  VersionTLS12: 'TLSv1.2',
  VersionTLS13: 'TLSv1.3',
};

/** Parses the text of antrea-controller.conf (an empty text gives the defaults). */
export function parseControllerConfig(text: string): ControllerConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ValidationError('config', `not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return DEFAULT_CONTROLLER_CONFIG;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ValidationError('config', 'must be a YAML mapping');
  const m = doc as Record<string, unknown>;
  const str = (key: string, v: unknown, def: string): string => {
    if (v === undefined || v === null) return def;
    if (typeof v !== 'string') throw new ValidationError(key, `must be a string, not ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string, def: boolean): boolean => {
    const v = m[key];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') throw new ValidationError(key, `must be true or false, not ${JSON.stringify(v)}`);
    return v;
  };
  const cc = m['clientConnection'];
  if (cc !== undefined && cc !== null && (typeof cc !== 'object' || Array.isArray(cc))) {
    throw new ValidationError('clientConnection', 'must be a mapping');
  }
  const apiPort = m['apiPort'] ?? DEFAULT_API_PORT;
  if (typeof apiPort !== 'number' || !Number.isInteger(apiPort) || apiPort < 1 || apiPort > 65535) {
    throw new ValidationError('apiPort', `must be a port number (1-65535), not ${JSON.stringify(apiPort)}`);
  }
  const tlsMin = str('tlsMinVersion', m['tlsMinVersion'], '');
  let tlsMinVersion: TlsMinVersion | undefined;
  if (tlsMin !== '') {
    const v = TLS_VERSIONS[tlsMin];
    if (v === undefined) {
      throw new ValidationError('tlsMinVersion', `"${tlsMin}" is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
    }
    if (v === 'unsupported')
      throw new ValidationError('tlsMinVersion', `${tlsMin} is not supported (use VersionTLS12 or VersionTLS13)`);
    tlsMinVersion = v;
  }
  const ciphers = str('tlsCipherSuites', m['tlsCipherSuites'], '');
  return {
    kubeconfig: str('clientConnection.kubeconfig', (cc as Record<string, unknown> | undefined)?.['kubeconfig'], ''),
    kubeAPIServerOverride: str('kubeAPIServerOverride', m['kubeAPIServerOverride'], ''),
    apiPort,
    apiBindAddress: str('apiBindAddress', m['apiBindAddress'], DEFAULT_CONTROLLER_CONFIG.apiBindAddress),
    enablePrometheusMetrics: bool('enablePrometheusMetrics', true),
    selfSignedCert: bool('selfSignedCert', true),
    tlsCertDir: str('tlsCertDir', m['tlsCertDir'], DEFAULT_CONTROLLER_CONFIG.tlsCertDir),
    // Antrea takes Go (IANA) names; Node takes OpenSSL names. Both are comma lists; pass through as given.
    tlsCipherSuites: ciphers
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .join(':'),
    tlsMinVersion,
    allowUnboundAgentTokens: bool('allowUnboundAgentTokens', false),
  };
}
