/**
 * `chancery history --proxy NS/NAME --at TIME`: which revision a proxy ran at a past moment, from the control
 * plane's append-only history; with `--git REPO` also the configuration it had then (recompiled at that commit).
 */
import path from 'node:path';
import { stringify } from 'yaml';
import { proxyAt, registeredAt, HistoryLog } from '../app/history.js';
import { compileSource } from '../compiler.js';
import { readCommit } from '../source/git.js';
import { SHORT_NAME } from '../xds/type-urls.js';
import { redactSecrets } from '../xds/resources/secret.js';
import { command, parse, UsageError } from './args.js';

const HELP = `Usage: chancery history --proxy NAMESPACE/NAME --at TIME [--state-dir DIR] [--git REPO [--path SUBDIR]] [--full]

TIME is an ISO 8601 date-time (2026-11-22T10:15:00Z). Prints the revision the proxy held completely at that moment,
since when, whether it was connected, and the rejections it reported. With --git (the repository the control plane
follows) it also recompiles that commit and lists the proxy's resources (--full prints them).`;

export function runHistory(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, {
      proxy: { type: 'string' },
      at: { type: 'string' },
      'state-dir': { type: 'string', default: '.chancery' },
      git: { type: 'string' },
      path: { type: 'string', default: '' },
      full: { type: 'boolean', default: false },
    });
    if (!values.proxy) throw new UsageError('--proxy is required');
    const at = new Date(values.at ?? '');
    if (!values.at || Number.isNaN(at.getTime())) throw new UsageError('--at must be a date-time such as 2026-11-22T10:15:00Z');
    const log = new HistoryLog(path.join(values['state-dir']!, 'history.jsonl'));
    const entries = log.read();
    const r = proxyAt(entries, values.proxy, at);
    if (!r.revision) {
      console.log(`${r.proxy} held no complete revision at ${r.at}${r.connected ? ' (connected, still converging)' : ''}`);
      return 1;
    }
    console.log(`${r.proxy} at ${r.at}: revision ${r.revision} (held since ${r.since}), ${r.connected ? 'connected' : 'disconnected, keeping that configuration'}`);
    const reg = r.registered;
    if (reg) console.log(`  registered into ${reg.group} at ${reg.address} since ${reg.since}`);
    for (const n of r.nacks) console.log(`  NACK ${n.type} at ${n.t}: ${n.message}`);
    if (values.git) {
      const src = await readCommit(path.resolve(values.git), r.revision, values.path!);
      // With the instances registered at that moment: the configuration as it was served.
      const result = compileSource(src.value, src.diagnostics, undefined, { registered: registeredAt(entries, at) });
      const proxy = result.proxies.get(values.proxy);
      if (!proxy) {
        console.error(`chancery: ${values.proxy} is not in revision ${r.revision}`);
        return 1;
      }
      const doc: Record<string, unknown> = {};
      for (const [t, list] of proxy.resources) doc[SHORT_NAME[t]] = values.full ? list.map((x) => redactSecrets(x.json)) : list.map((x) => x.name);
      console.log(stringify(doc, { aliasDuplicateObjects: false }));
    }
    return 0;
  });
}
