/**
 * antctl's logic without a server: argument parsing (Antrea's verbs, aliases and flags, and a clear
 * error naming what is wrong), mode detection from the Pod environment, table rendering against
 * golden text, and the ovs-ofctl rendering of flows with their counters.
 */
import { join } from 'node:path';
import t from 'tap';
import { parseAntctlArgs, detectMode, parseDuration, UsageError, type Command } from '../../src/antctl/args.ts';
import { runAntctl } from '../../src/antctl/main.ts';
import { render, summarize } from '../../src/antctl/output.ts';
import { formatFlowStats } from '../../src/common/agent/apiserver/querier.ts';
import type { AddressGroup, AppliedToGroup, NetworkPolicy } from '../../src/common/apis/controlplane/types.ts';
import { parseFlow } from '../../src/common/ovs/openflow/flow.ts';
import { matchesGolden } from '../helpers/golden.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'antctl');

function get(argv: string[]): Extract<Command, { verb: 'get' }> {
  const c = parseAntctlArgs(argv).command;
  if (c.verb !== 'get') throw new Error(`not a get: ${c.verb}`);
  return c;
}

t.test('resources and their aliases', (t) => {
  for (const [words, want] of [
    [['networkpolicy', 'networkpolicies', 'netpol', 'np'], 'networkpolicy'],
    [['addressgroup', 'addrgroup', 'ag'], 'addressgroup'],
    [['appliedtogroup', 'atg'], 'appliedtogroup'],
    [['podinterface', 'pi'], 'podinterface'],
    [['ovsflows', 'of'], 'ovsflows'],
    [['agentinfo', 'ai'], 'agentinfo'],
    [['controllerinfo', 'ci'], 'controllerinfo'],
  ] as const) {
    for (const w of words) t.equal(get(['get', w]).resource, want, `${w} → ${want}`);
  }
  t.end();
});

t.test('flags', (t) => {
  const p = parseAntctlArgs([
    '-o',
    'json',
    'get',
    'of',
    '-T',
    'Classifier,3',
    '-p',
    'web',
    '-n',
    'prod',
    '-t',
    '1m30s',
  ]);
  t.equal(p.flags.output, 'json');
  t.equal(p.flags.timeoutMs, 90_000);
  t.match(p.command, { verb: 'get', resource: 'ovsflows', tables: ['Classifier', '3'], pod: 'web', namespace: 'prod' });
  const np = get(['get', 'netpol', 'p1', '-T', 'ACNP', '-S', 'allow', '--sort-by', 'effectivePriority', '-n', 'a']);
  t.match(np, {
    name: 'p1',
    policyType: 'ACNP',
    source: 'allow',
    sortBy: 'effectivePriority',
    namespace: 'a',
    tables: [],
  });
  const g = parseAntctlArgs([
    '--kubeconfig=/k',
    '-s',
    'https://10.0.0.1:10349/',
    '--mode',
    'agent',
    '--token-file',
    '/t',
    '--ca-file',
    '/c',
    '--insecure-skip-tls-verify',
    '-v',
    'version',
  ]).flags;
  t.match(g, {
    kubeconfig: '/k',
    server: 'https://10.0.0.1:10349',
    mode: 'agent',
    tokenFile: '/t',
    caFile: '/c',
    insecure: true,
    verbose: true,
    antreaNamespace: 'kube-system',
    timeoutMs: 30_000,
  });
  t.equal(parseAntctlArgs(['--help']).command.verb, 'help');
  t.equal(get(['get', 'of', '--table-names-only']).tableNamesOnly, true);
  t.end();
});

t.test('bad arguments are refused with a message naming them', (t) => {
  const cases: [string[], RegExp][] = [
    [[], /a command is required/],
    [['gett', 'np'], /unknown command "gett"/],
    [['get'], /get needs a resource type/],
    [['get', 'pods'], /unknown resource type "pods" for get \(known: networkpolicy\|/],
    [['get', 'np', '--bogus'], /Unknown option '--bogus'/],
    [['get', 'np', '-o', 'wide'], /invalid value "wide" for -o\/--output: must be table, json or yaml/],
    [['get', 'ag', '-p', 'x'], /-p\/--pod is not valid for get addressgroup/],
    [['get', 'ai', '-n', 'x', '-T', 'y'], /-n\/--namespace, -T\/--table are not valid for get agentinfo/],
    [['version', '-p', 'x'], /-p\/--pod is not valid for version/],
    [['version', 'extra'], /unexpected argument "extra" for version/],
    [['get', 'np', 'a', 'b'], /unexpected argument "b" for get networkpolicy/],
    [['get', 'of', 'x'], /get ovsflows takes no NAME argument \(got "x"\)/],
    [['get', 'of', '-n', 'x'], /-n\/--namespace needs -p\/--pod/],
    [['get', 'of', '--table-names-only', '-T', '1'], /--table-names-only cannot be combined/],
    [['get', 'of', '-T', ','], /-T\/--table needs at least one table/],
    [['get', 'np', '-T', 'K8s'], /invalid value "K8s" for -T\/--table: the policy type must be one of K8sNP, ACNP/],
    [['get', 'np', '--sort-by', 'age'], /invalid value "age" for --sort-by/],
    [['-t', '10x', 'version'], /invalid value "10x" for -t\/--timeout/],
    [['--mode', 'both', 'version'], /invalid value "both" for --mode: must be agent or controller/],
    [['-s', 'http://x:1', 'version'], /invalid value "http:\/\/x:1" for -s\/--server: expected https:\/\/HOST:PORT/],
    [['get', 'np', '-o'], /Option '-o, --output <value>' argument missing/],
  ];
  for (const [argv, re] of cases) {
    t.throws(() => parseAntctlArgs(argv), re, argv.join(' ') || '(nothing)');
    t.throws(() => parseAntctlArgs(argv), UsageError);
  }
  t.end();
});

t.test('durations', (t) => {
  t.equal(parseDuration('t', '0'), 0);
  t.equal(parseDuration('t', '500ms'), 500);
  t.equal(parseDuration('t', '2s'), 2000);
  t.equal(parseDuration('t', '1h2m3s'), 3_723_000);
  t.equal(parseDuration('t', '1.5s'), 1500);
  t.throws(() => parseDuration('t', '10'), /expected a duration/);
  t.throws(() => parseDuration('t', ''), /expected a duration/);
  t.end();
});

t.test('mode detection as Antrea: from POD_NAME, or --mode', (t) => {
  t.same(detectMode({ POD_NAME: 'antrea-agent-7xk2p' }, undefined), { mode: 'agent', inPod: true });
  t.same(detectMode({ POD_NAME: 'antrea-controller-5d8f-abcde' }, undefined), { mode: 'controller', inPod: true });
  t.same(detectMode({ POD_NAME: 'web-1' }, undefined), { mode: 'controller', inPod: false });
  t.same(detectMode({}, undefined), { mode: 'controller', inPod: false });
  t.same(detectMode({}, 'agent'), { mode: 'agent', inPod: false });
  t.same(detectMode({ POD_NAME: 'antrea-agent-x' }, 'controller'), { mode: 'controller', inPod: true });
  t.end();
});

async function run(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runAntctl(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s), env }, 'antctl');
  return { code, out, err };
}

t.test('exit codes and messages without a server', async (t) => {
  let r = await run(['get', 'np', '--nope']);
  t.equal(r.code, 2);
  t.equal(r.err, "Error: Unknown option '--nope'\nRun 'antctl --help' for usage.\n");
  r = await run(['--help']);
  t.equal(r.code, 0);
  t.match(r.out, /get ovsflows\|of \[-T TABLE/);
  r = await run(['get', 'podinterface']);
  t.equal(r.code, 2, 'an agent command in controller mode');
  t.match(
    r.err,
    /"get podinterface" is only available in agent mode \(run antctl inside the antrea-agent Pod, or with --mode agent\); this is controller mode/,
  );
  r = await run(['get', 'ci'], { POD_NAME: 'antrea-agent-abc' });
  t.equal(r.code, 2, 'a controller command in the agent Pod');
  t.match(r.err, /only available in controller mode/);
  r = await run(['get', 'of', '--token-file', '/nonexistent/token'], { POD_NAME: 'antrea-agent-abc' });
  t.equal(r.code, 1);
  t.match(r.err, /cannot read the agent API token \/nonexistent\/token: ENOENT/);
  r = await run(['get', 'np', '-k', '/nonexistent/kubeconfig']);
  t.equal(r.code, 1);
  t.match(r.err, /cannot load the kubeconfig \/nonexistent\/kubeconfig/);
});

const POLICIES: (NetworkPolicy & { trafficStats?: { packets: number; bytes: number; sessions: number } })[] = [
  {
    metadata: { name: '5f3c2a10-7d1e-4b7a-9b0a-0c1d2e3f4a5b' },
    appliedToGroups: ['a1b2c3d4-0000-5000-8000-000000000001'],
    rules: [
      {
        direction: 'In',
        from: { addressGroups: ['ag1'], ipBlocks: [] },
        to: { addressGroups: [], ipBlocks: [] },
        services: [],
        priority: -1,
      },
      {
        direction: 'In',
        from: { addressGroups: ['ag2'], ipBlocks: [] },
        to: { addressGroups: [], ipBlocks: [] },
        services: [],
        priority: -1,
      },
    ],
    sourceRef: { type: 'K8sNetworkPolicy', namespace: 'prod', name: 'allow-web', uid: 'u1' },
    trafficStats: { packets: 120, bytes: 9840, sessions: 12 },
  },
  {
    metadata: { name: '9e8d7c6b-1111-4222-8333-444455556666' },
    appliedToGroups: Array.from({ length: 6 }, (_, i) => `group-with-a-long-name-${i}`),
    rules: [],
    priority: 5,
    tierPriority: 250,
    sourceRef: { type: 'AntreaClusterNetworkPolicy', namespace: '', name: 'isolate', uid: 'u2' },
    trafficStats: { packets: 0, bytes: 0, sessions: 0 },
  },
];

t.test('tables (golden text)', (t) => {
  const ag: AddressGroup[] = [
    {
      metadata: { name: 'ag1' },
      groupMembers: [
        { pod: { namespace: 'prod', name: 'web-1' }, ips: ['10.10.1.5'] },
        { pod: { namespace: 'prod', name: 'web-2' }, ips: ['10.10.1.6', 'fd00::6'] },
        { node: { name: 'node-2' }, ips: ['192.0.2.12'] },
      ],
    },
    { metadata: { name: 'ag2' }, groupMembers: [] },
  ];
  const atg: AppliedToGroup[] = [
    {
      metadata: { name: 'atg1' },
      groupMembers: [{ pod: { namespace: 'prod', name: 'db-0' } }, { pod: { namespace: 'prod', name: 'api-0' } }],
    },
  ];
  const pis = [
    {
      name: 'web-1',
      podNamespace: 'prod',
      interfaceName: 'web-1-3f2a1b',
      ips: ['10.10.1.5'],
      mac: '0a:58:0a:0a:01:05',
      ofPort: 7,
      containerID: '4f1c0e9a8b7c6d5e4f3a2b1c0d9e8f7a',
    },
  ];
  const flows = [
    {
      flow: 'cookie=0x1000000000000, duration=5.12s, table=0, n_packets=3, n_bytes=180, idle_age=1, priority=200,in_port=2 actions=goto_table:1',
    },
  ];
  const agentInfo = {
    version: 'v0.1.0-antrea-ts',
    podRef: { kind: 'Pod', namespace: 'kube-system', name: 'antrea-agent-x7' },
    nodeRef: { kind: 'Node', name: 'node-1' },
    nodeSubnets: ['10.10.1.0/24'],
    networkPolicyControllerInfo: { networkPolicyNum: 2, addressGroupNum: 3, appliedToGroupNum: 1 },
    localPodNum: 4,
    agentConditions: [
      { type: 'AgentHealthy', status: 'True' },
      { type: 'ControllerConnectionUp', status: 'Unknown' },
    ],
  };
  const controllerInfo = {
    version: 'v0.1.0-antrea-ts',
    podRef: { kind: 'Pod', namespace: 'kube-system', name: 'antrea-controller-abc' },
    nodeRef: { kind: 'Node', name: 'node-1' },
    networkPolicyControllerInfo: { networkPolicyNum: 2, addressGroupNum: 3, appliedToGroupNum: 1 },
    connectedAgentNum: 3,
    controllerConditions: [{ type: 'ControllerHealthy', status: 'True' }],
  };
  const text = [
    render('table', 'networkpolicy', POLICIES, false),
    render(
      'table',
      'networkpolicy',
      POLICIES.map(({ trafficStats: _s, ...p }) => p),
      false,
    ),
    render('table', 'addressgroup', ag, false),
    render('table', 'appliedtogroup', atg, false),
    render('table', 'podinterface', pis, false),
    render('table', 'ovsflows', flows, false),
    render(
      'table',
      'ovsflows',
      [
        { name: 'PipelineRootClassifier', id: 0 },
        { name: 'Classifier', id: 3 },
      ],
      false,
    ),
    render('table', 'agentinfo', agentInfo, true),
    render('table', 'controllerinfo', controllerInfo, true),
    render('table', 'networkpolicy', [], false),
  ].join('---\n');
  matchesGolden(t, join(GOLDEN, 'tables.txt'), text);
  t.end();
});

t.test('json and yaml print the objects', (t) => {
  t.same(JSON.parse(render('json', 'networkpolicy', POLICIES, false)), POLICIES);
  t.match(
    render('yaml', 'addressgroup', { metadata: { name: 'ag1' }, groupMembers: [] }, true),
    /^metadata:\n {2}name: ag1\ngroupMembers: \[\]\n$/,
  );
  t.end();
});

t.test('long lists are summarized', (t) => {
  t.equal(summarize([]), '<NONE>');
  t.equal(summarize(['b', 'a']), 'a, b');
  t.equal(summarize(['aaaa', 'bbbb', 'cccc', 'dddd'], 12), 'aaaa, bbbb + 2 more...');
  t.equal(summarize(['a-very-long-single-item'], 5), 'a-very-long-single-item', 'one item is never cut');
  t.end();
});

t.test('flows with counters in ovs-ofctl dump-flows syntax', (t) => {
  const flow = parseFlow('cookie=0x1030000000000, table=3, priority=200,ip,nw_src=10.0.0.1 actions=goto_table:4');
  t.equal(
    formatFlowStats({
      flow,
      durationSec: 5,
      durationNsec: 120_000_000,
      idleAgeSec: 2,
      packetCount: 7n,
      byteCount: 686n,
    }),
    'cookie=0x1030000000000, duration=5.120s, table=3, n_packets=7, n_bytes=686, idle_age=2, priority=200,ip,nw_src=10.0.0.1 actions=goto_table:4',
  );
  const timed = parseFlow(
    'table=0, idle_timeout=60, hard_timeout=30, send_flow_rem importance=5, priority=10 actions=drop',
  );
  t.equal(
    formatFlowStats({ flow: timed, durationSec: 0, durationNsec: 0, packetCount: 0n, byteCount: 0n }),
    'cookie=0x0, duration=0s, table=0, n_packets=0, n_bytes=0, idle_timeout=60, hard_timeout=30, send_flow_rem importance=5, priority=10 actions=drop',
  );
  t.end();
});
