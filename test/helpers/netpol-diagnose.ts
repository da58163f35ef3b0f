/**
 * src/lab/diagnose.ts for the integration tests' Nodes: when a NetworkPolicy probe stays wrong,
 * records the flows the pairs' packets hit, conntrack and datapath flows per Node, and the probe's
 * own failure reason (twice from an ephemeral source port, once from a fixed one).
 */
import { join } from 'node:path';
import { diagnoseWrongPairs, type WrongPair } from '../../src/lab/diagnose.ts';
import type { AgentNode } from './agent-node.ts';
import { runner } from './env.ts';

const PROBE = join(import.meta.dirname, 'netpol-probe.ts');

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
      const sport = attempt === 2 ? ['45678'] : [];
      try {
        const r = await runner.run(
          'ip',
          ['netns', 'exec', p.fromNs, process.execPath, PROBE, p.proto, p.toIp, String(p.port), '1000', ...sport],
          { timeoutMs: 30_000, okExitCodes: [1] },
        );
        return `${sport.length > 0 ? 'sport 45678' : 'ephemeral'}: ${r.stdout.trim()}`;
      } catch (err) {
        return `probe failed: ${err instanceof Error ? err.message : String(err)}`;
      }
    },
  });
  return lines.join('\n');
}
