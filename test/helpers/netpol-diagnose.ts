/**
 * src/lab/diagnose.ts for the integration tests' Nodes: when a NetworkPolicy probe stays wrong,
 * records the flows the pairs' packets hit, conntrack and datapath flows per Node, and the probe's
 * own failure reason (twice from an ephemeral source port, once from a fixed one).
 */
import { diagnoseWrongPairs, type WrongPair } from '../../src/lab/diagnose.ts';
import type { AgentNode } from './agent-node.ts';
import { probeOnce } from './controlplane-node.ts';
import { runner } from './env.ts';

export interface DiagnosedPair extends WrongPair {
  /** The source Pod's netns name. */
  readonly fromNs: string;
  readonly port: number;
  readonly proto: 'tcp' | 'udp';
}

export async function diagnosePairs(
  nodes: readonly AgentNode[],
  pairs: readonly DiagnosedPair[],
  dir: string,
): Promise<string> {
  const byKey = new Map(pairs.map((p) => [`${p.from}>${p.to}`, p]));
  const lines = await diagnoseWrongPairs({
    runner,
    dir,
    pairs,
    nodes: nodes.map((n) => ({
      name: n.nodeName,
      bridgeMgmtSocket: n.ovs.bridgeMgmtSocketPath('br-int'),
      vswitchdSocket: n.ovs.ctlSocketPath('ovs-vswitchd'),
    })),
    reprobe: async (w, attempt) => {
      const p = byKey.get(`${w.from}>${w.to}`);
      if (p === undefined) return 'unknown pair';
      const sport = attempt === 2 ? 45678 : undefined;
      try {
        const r = await probeOnce(p.fromNs, p.proto, p.toIp, p.port, sport);
        return `${sport === undefined ? 'ephemeral' : `sport ${sport}`}: ${r.line}`;
      } catch (err) {
        return `probe failed: ${err instanceof Error ? err.message : String(err)}`;
      }
    },
  });
  return lines.join('\n');
}
