/**
 * Renders docs/design/ovs-pipeline.md from the table catalog, so the document always describes the
 * tables as they are declared in code (a unit test compares the file with this output;
 * `node scripts/gen-ovs-pipeline-doc.ts` rewrites it).
 */
import { POD_OFPORT_MAX, POD_OFPORT_MIN } from '../cniserver/ofport-allocator.ts';
import { COOKIE_CATEGORIES } from './cookie.ts';
import { CATALOG, PIPELINES, STAGES, type TableCatalog } from './pipeline.ts';

export function renderPipelineDoc(catalog: TableCatalog = CATALOG): string {
  const out: string[] = [];
  out.push('# The OVS pipeline');
  out.push('');
  out.push(
    '<!-- Generated from src/common/agent/openflow/pipeline.ts by scripts/gen-ovs-pipeline-doc.ts. Do not edit. -->',
  );
  out.push('');
  out.push('The agent programs one OpenFlow pipeline into the OVS bridge `br-int`. The pipeline is declared');
  out.push('once, in `src/common/agent/openflow/pipeline.ts`: every table with its pipeline, stage and miss');
  out.push('action, in execution order. Features (Pod connectivity, Services, NetworkPolicy, ...) declare the');
  out.push('tables they need and build their flows with the immutable builders of `builder.ts`.');
  out.push('');
  out.push('## How tables become OVS tables');
  out.push('');
  out.push('1. The active features are chosen from the configuration; each lists the tables it needs.');
  out.push('2. The union of those tables (plus `PipelineRootClassifier`, always present) is bucketed by pipeline.');
  out.push(
    `3. Pipelines are walked in this order: ${PIPELINES.map((p) => `\`${p}\``).join(', ')}; inside each, tables keep`,
  );
  out.push('   their declaration order. Each kept table gets the next table id, starting at 0. Ids therefore');
  out.push('   depend on the active features: flows, logs and `antctl` refer to tables by name, and the names');
  out.push('   are programmed into OVS (table features), so `ovs-ofctl dump-flows br-int table=Classifier` works.');
  out.push('4. Every table gets a priority-0 miss flow: `goto_table` to the next table of its pipeline (miss');
  out.push('   action `next`), or drop (miss action `drop`, and always for the last table of a pipeline).');
  out.push('   `PipelineRootClassifier` sends `ip`/`ipv6` to the first IP table and `arp` to the first ARP table.');
  out.push('');
  out.push('Flows move forward with `goto_table` (next table, a given table, or the first table of a later');
  out.push('stage); `resubmit` is used to go back or to fan out. Every change is one atomic OpenFlow bundle.');
  out.push('');
  out.push('## Stages');
  out.push('');
  out.push('| stage | what happens there |');
  out.push('| --- | --- |');
  for (const [stage, what] of STAGES) out.push(`| \`${stage}\` | ${what} |`);
  out.push('');
  out.push('## Tables, in declaration order');
  out.push('');
  for (const p of PIPELINES) {
    const tables = catalog.tables.filter((t) => t.pipeline === p);
    if (tables.length === 0) continue;
    out.push(`### Pipeline \`${p}\``);
    out.push('');
    out.push('| # | table | stage | miss | purpose |');
    out.push('| --- | --- | --- | --- | --- |');
    tables.forEach((t, i) => {
      const miss = i === tables.length - 1 ? 'drop (last)' : t.missAction;
      out.push(`| ${i + 1} | \`${t.name}\` | ${t.stage} | ${miss} | ${t.purpose} |`);
    });
    out.push('');
  }
  out.push('## Cookies');
  out.push('');
  out.push('A flow cookie is `round (bits 63..48) | category (47..40) | reserved (39..32) | object id (31..0)`.');
  out.push('A restarted agent installs its flows with a new round and deletes the previous round (by cookie');
  out.push('and mask) once it has converged. Categories:');
  out.push('');
  out.push('| category | value |');
  out.push('| --- | --- |');
  for (const [name, v] of Object.entries(COOKIE_CATEGORIES)) out.push(`| ${name} | ${v} |`);
  out.push('');
  out.push('## Pod ports');
  out.push('');
  out.push("The agent chooses each Pod port's OpenFlow number itself (`ofport_request`, from the upper half of");
  out.push(
    `the range, ${POD_OFPORT_MIN}-${POD_OFPORT_MAX}, which ovs-vswitchd never assigns on its own; round-robin, so a freed number`,
  );
  out.push("comes back as late as possible) and the container MAC, so CNI ADD installs the Pod's flows while");
  out.push('the veth and the OVS port are being made instead of after ovs-vswitchd reported an ofport. If the');
  out.push('port ends up with another number (a writer outside the agent took it meanwhile) or the interface');
  out.push("with another MAC, ADD reinstalls the Pod's flows with the real values before it answers. The");
  out.push('gateway and tunnel keep their fixed low numbers.');
  out.push('');
  out.push('## Changes');
  out.push('');
  out.push("Every change (a Pod's flows, a policy update, a Service sync) is one atomic bundle, recorded once");
  out.push('committed; on the userspace datapath the datapath flows are purged after it (see');
  out.push('`networkpolicy-agent.md`). Changes run one at a time in call order; those that pile up while one');
  out.push('runs (a burst of Pods starting at once) are committed together when their turn comes: consecutive');
  out.push('changes that touch only flows share one bundle and one purge, each still whole, and a change with');
  out.push('groups or meters is applied alone. If the common bundle is refused, its changes are applied one by');
  out.push('one, so that only the faulty one fails.');
  out.push('');
  out.push('## Replay');
  out.push('');
  out.push('The bridge client records every meter, group and flow it installed (flows under cache keys such');
  out.push('as a Pod interface name), and records a change only after its bundle committed. On every');
  out.push('connection (the first one, and again whenever it comes back, for example after ovs-vswitchd');
  out.push('restarted) it names the tables, adds or modifies the recorded meters, then in one bundle adds or');
  out.push('modifies the groups, deletes the flows of its own round and adds the recorded flows: the switch');
  out.push("ends with exactly the agent's state, and flows of a previous round stay until `deleteStaleRounds`.");
  out.push('');
  return out.join('\n');
}
