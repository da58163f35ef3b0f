/**
 * antrea-lab: a whole cluster on one Linux machine. Until the lab exists it has one subcommand:
 *
 *   antrea-lab demo [--hold] [--verbose]
 *
 * brings up one real Node (network namespace, private Open vSwitch with the userspace datapath,
 * br-int with antrea-gw0, antrea-tun0 and a Pod's veth), lists its ports and cleans up, also on
 * Ctrl-C. `--hold` keeps the Node up until Ctrl-C; `--verbose` adds debug logs on stderr.
 */
import { createCommandRunner, createProcessLauncher } from '../common/util/exec.ts';
import { errorMessage } from '../common/util/errors.ts';
import { createLogger } from '../common/util/log.ts';
import { runDemo } from '../lab/demo.ts';

const USAGE = `usage: antrea-lab demo [--hold] [--verbose]

  demo   bring up one Node (netns + private OVS, br-int with antrea-gw0, antrea-tun0 and a Pod),
         list its ports with their ofports and external_ids, then clean everything up
         --hold     keep the Node up until Ctrl-C
         --verbose  debug logs on stderr`;

async function demo(args: string[]): Promise<number> {
  const known = new Set(['--hold', '--verbose']);
  const unknown = args.filter((a) => !known.has(a));
  if (unknown.length > 0) {
    console.error(`antrea-lab demo: unknown argument ${unknown.join(' ')}\n\n${USAGE}`);
    return 2;
  }
  if (process.platform !== 'linux') {
    console.error('antrea-lab demo needs Linux (network namespaces and Open vSwitch)');
    return 1;
  }
  if (process.getuid?.() !== 0) {
    console.error('antrea-lab demo needs root (it creates network namespaces and runs Open vSwitch)');
    return 1;
  }
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts === 1) {
      console.log(`\n${sig}: stopping`);
      ac.abort(new Error(`interrupted by ${sig}`));
    } else {
      console.log('cleanup in progress, please wait');
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const logger = createLogger({ level: args.includes('--verbose') ? 'debug' : 'warn', format: 'text' });
  try {
    await runDemo({
      runner: createCommandRunner(),
      launcher: createProcessLauncher(),
      say: (line) => console.log(line),
      signal: ac.signal,
      hold: args.includes('--hold'),
      logger,
    });
    return 0;
  } catch (err) {
    if (ac.signal.aborted) {
      console.log('stopped');
      return 130;
    }
    console.error(`antrea-lab demo failed: ${errorMessage(err)}`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'demo':
    process.exitCode = await demo(rest);
    break;
  case undefined:
  case '-h':
  case '--help':
    console.log(USAGE);
    process.exitCode = command === undefined ? 2 : 0;
    break;
  default:
    console.error(`antrea-lab: unknown command ${command}\n\n${USAGE}`);
    process.exitCode = 2;
}
