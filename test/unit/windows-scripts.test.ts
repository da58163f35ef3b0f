/**
 * The Windows Node scripts and the HostProcess DaemonSet, read on Linux (PowerShell itself is not
 * installable here; CI parses the scripts and runs PSScriptAnalyzer on a Windows runner): every
 * script is an advanced script with comment-based help (.SYNOPSIS, .DESCRIPTION, an .EXAMPLE and a
 * .PARAMETER for each parameter), validates its parameters and stops on errors; the manifest is a
 * HostProcess DaemonSet with Antrea's Windows layout.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseAgentConfig } from '../../src/common/agent/config.ts';
import { WINDOWS_CAPABILITIES, WINDOWS_PATHS } from '../../src/platform/windows/platform.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'scripts', 'windows');
const EXPECTED = [
  'Clean-AntreaNetwork.ps1',
  'Install-AntreaAgentService.ps1',
  'Install-OVS.ps1',
  'Prepare-AntreaAgent.ps1',
  'Prepare-Node.ps1',
];

t.test('every script has help, validated parameters and stops on errors', (t) => {
  t.same(
    readdirSync(DIR)
      .filter((f) => f.endsWith('.ps1'))
      .sort(),
    EXPECTED,
  );
  for (const name of EXPECTED) {
    const text = readFileSync(join(DIR, name), 'utf8').replace(/\r\n/g, '\n');
    const help = /^<#\n([\s\S]*?)\n#>\n/.exec(text)?.[1] ?? '';
    t.match(help, /^\.SYNOPSIS\n\S/m, `${name}: .SYNOPSIS`);
    t.match(help, /^\.DESCRIPTION\n\S/m, `${name}: .DESCRIPTION`);
    t.match(help, /^\.EXAMPLE\n\S/m, `${name}: .EXAMPLE`);
    t.match(text, /^\[CmdletBinding\([^)]*\)\]\nparam \(/m, `${name}: an advanced script`);
    t.match(text, /^\$ErrorActionPreference = 'Stop'$/m, `${name}: stops on errors`);
    const block = /\nparam \(\n([\s\S]*?)\n\)\n/.exec(text)?.[1] ?? '';
    const params = [...block.matchAll(/\[(?:string|bool|switch|int)\] \$(\w+)/g)].map((m) => m[1]!);
    t.ok(params.length > 0, `${name}: has parameters`);
    for (const p of params) t.match(help, new RegExp(`^\\.PARAMETER ${p}\\n\\S`, 'm'), `${name}: .PARAMETER ${p}`);
    t.match(block, /\[Validate(Set|Script|Pattern|NotNullOrEmpty)\(/, `${name}: validates parameters`);
    // Balanced braces and parentheses outside strings and comments (a cheap parse check).
    const code = text
      .replace(/<#[\s\S]*?#>/g, '')
      .replace(/@'[\s\S]*?'@/g, "''")
      .replace(/'(?:[^']|'')*'/g, "''")
      .replace(/"(?:[^"`]|`.)*"/g, '""')
      .replace(/#.*$/gm, '');
    for (const [open, close] of [
      ['{', '}'],
      ['(', ')'],
      ['[', ']'],
    ] as const) {
      t.equal(code.split(open).length, code.split(close).length, `${name}: balanced ${open}${close}`);
    }
  }
  t.end();
});

t.test('antrea-windows.yml is a HostProcess DaemonSet with the Windows layout', (t) => {
  interface Doc {
    kind?: string;
    data?: Record<string, string>;
    spec?: { template?: { spec?: Record<string, unknown> } };
  }
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'build', 'yamls', 'antrea-windows.yml'), 'utf8')).map(
    (d) => d.toJS() as Doc,
  );
  const cm = docs.find((d) => d.kind === 'ConfigMap');
  const ds = docs.find((d) => d.kind === 'DaemonSet');
  t.ok(cm !== undefined && ds !== undefined);
  const spec = ds?.spec?.template?.spec ?? {};
  const names = (k: string): string[] => ((spec[k] ?? []) as { name: string }[]).map((c) => c.name);
  t.same(spec['nodeSelector'], { 'kubernetes.io/os': 'windows' });
  t.equal(spec['hostNetwork'], true);
  t.same((spec['securityContext'] as { windowsOptions?: unknown } | undefined)?.windowsOptions, {
    hostProcess: true,
    runAsUserName: 'NT AUTHORITY\\SYSTEM',
  });
  t.same(names('initContainers'), ['install-cni', 'install-ovs-driver']);
  t.same(names('containers'), ['antrea-agent', 'antrea-ovs']);
  const conf = String(cm?.data?.['antrea-agent.conf']);
  t.match(conf, /cniSocket: \\\\\.\\pipe\\cnisock/);
  t.match(conf, /ovsDatapathType: system/);
  const parsed = parseAgentConfig(conf);
  t.equal(parsed.cniSocket, WINDOWS_PATHS.cniSocket, 'the pipe the strategy defaults to');
  t.equal(parsed.ovsRunDir, WINDOWS_PATHS.ovsRunDir);
  t.same(WINDOWS_CAPABILITIES.validate(parsed), [], 'the shipped configuration is valid on Windows');
  const conflist = JSON.parse(String(cm?.data?.['10-antrea.conflist'])) as { plugins: { capabilities: unknown }[] };
  t.same(conflist.plugins[0]?.capabilities, { dns: true });
  t.end();
});

t.test('the Windows image provides what antrea-windows.yml runs', (t) => {
  const dockerfile = readFileSync(join(ROOT, 'build', 'images', 'windows', 'Dockerfile'), 'utf8');
  const yml = readFileSync(join(ROOT, 'build', 'yamls', 'antrea-windows.yml'), 'utf8');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const final = stages.at(-1) ?? '';
  t.match(final, /^\$\{HPC_BASE\}/, 'the final stage is the HostProcess base image');
  t.notMatch(final, /^RUN /m, 'the final stage only copies (it is built on Linux)');
  t.match(dockerfile, /COPY build\/images\/windows\/antrea-cni-launcher\.c /);
  // Every "$root\..." path the manifest uses comes from a COPY into the final stage's layout.
  const rootPaths = [...yml.matchAll(/\$root\\([A-Za-z0-9_.-]+)/g)].map((m) => m[1] ?? '');
  const provided = ['node', 'antrea-ts', 'bin', 'cni-plugins', 'ovs', 'etc'];
  for (const p of new Set(rootPaths)) t.ok(provided.includes(p), `$root\\${p} is in the image (or mounted)`);
  t.match(dockerfile, /cp "\/tmp\/node-v\$\{NODE_VERSION\}-win-x64\/node\.exe" node\//, 'node\\node.exe');
  t.match(dockerfile, /-C cni-plugins \.\/host-local\.exe/, 'cni-plugins\\host-local.exe');
  t.match(dockerfile, /ovs\/ovs-win64\.zip/, 'ovs\\ovs-win64.zip');
  t.match(final, /COPY --from=launcher \/out\/antrea-cni-launcher\.exe \/bin\/antrea-cni-launcher\.exe/);
  t.match(final, /COPY --from=app \/out\/antrea-ts \/antrea-ts/);
  t.match(yml, /install-cni\.ts --os windows --launcher "\$root\\bin\\antrea-cni-launcher\.exe"/);
  t.end();
});
