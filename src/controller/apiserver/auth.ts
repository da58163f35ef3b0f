/**
 * The controller's side of delegated auth: the shared TokenReview/SubjectAccessReview machinery
 * lives in common/apiserver/auth.ts (the agent API uses it too); this module adds the Node binding.
 *
 * Beyond Antrea, {@link NodeAccessPolicy} binds an agent's identity to its Node: a token bound to a
 * Node (TokenReview user extra `authentication.kubernetes.io/node-name`, Kubernetes 1.30+ for
 * Pod-bound ServiceAccount tokens) may only watch its own Node's objects and report status for its
 * own Node, and the agent ServiceAccount without such a binding gets nothing (unless configured).
 */
import { boundNode, type UserInfo } from '../../common/apiserver/auth.ts';

export * from '../../common/apiserver/auth.ts';

export interface NodeAccessPolicyOptions {
  /**
   * Usernames that are agents (default: the antrea-agent ServiceAccount of the Antrea namespace):
   * without a Node binding they get nothing unless `allowUnboundAgents`.
   */
  readonly agentUsers: readonly string[];
  /** Let agent identities without a Node binding watch any Node (Antrea's behaviour). Default false. */
  readonly allowUnboundAgents?: boolean;
}

/** What a request asks of the controlplane resources, for the Node check. */
export interface NodeScopedRequest {
  /** 'watch' with a nodeName selector, 'read' for list/get/watch without one, 'report' for status. */
  readonly kind: 'watch' | 'read' | 'report';
  /** The nodeName of a watch, or the Nodes a status report is about. */
  readonly nodes: readonly string[];
}

/**
 * The Node binding rules:
 * - a Node-bound identity may watch only `nodeName=<its Node>` and report status only for its Node;
 *   it may not list, get or watch without a Node (that would show every Node's objects);
 * - an agent identity without a binding is refused everything, unless `allowUnboundAgents`;
 * - any other identity (administrators, antctl) is only subject to RBAC.
 * Returns the reason of a refusal, or undefined when allowed.
 */
export class NodeAccessPolicy {
  private readonly agents: ReadonlySet<string>;
  private readonly allowUnbound: boolean;

  constructor(opts: NodeAccessPolicyOptions) {
    this.agents = new Set(opts.agentUsers);
    this.allowUnbound = opts.allowUnboundAgents === true;
  }

  check(user: UserInfo, req: NodeScopedRequest): string | undefined {
    const node = boundNode(user);
    if (node === undefined) {
      if (this.agents.has(user.username) && !this.allowUnbound) {
        return `${user.username} is an agent identity but its token is not bound to a Node (use a Pod-bound ServiceAccount token)`;
      }
      return undefined;
    }
    if (req.kind === 'read') {
      return `${user.username} is bound to Node ${node}: it may only watch with fieldSelector nodeName=${node}`;
    }
    const other = req.nodes.find((n) => n !== node);
    if (other !== undefined) {
      return req.kind === 'watch'
        ? `${user.username} is bound to Node ${node} and may not watch Node ${other}`
        : `${user.username} is bound to Node ${node} and may not report status for Node ${other}`;
    }
    return undefined;
  }
}
