/**
 * `chancery check DIR`: the server's own compiler, with no server. Exit 1 when the revision would be rejected.
 */
import { compileSource } from '../compiler.js';
import { formatGithub, formatHuman, formatJson } from '../diag/format.js';
import { readDirectory } from '../source/directory.js';
import { directoryLookup } from '../credentials/read-credential.js';
import { command, parse, UsageError } from './args.js';

const HELP = `Usage: chancery check DIR [--format human|json|github] [--credentials-dir DIR]

Compiles the policy files under DIR exactly as the server would and prints every diagnostic. TLS credentials
(Gateway and DestinationRule credentialName) live outside the policy repository; with --credentials-dir they are
checked as the server checks them.
Exit status: 0 when the revision would be accepted, 1 when it has errors, 2 on bad usage.`;

export function runCheck(argv: string[]): Promise<number> {
  return command(HELP, argv, () => {
    const options = { format: { type: 'string', default: 'human' }, 'credentials-dir': { type: 'string' } } as const;
    const { values, positionals } = parse(argv, options, true);
    if (positionals.length !== 1) throw new UsageError('check takes exactly one directory');
    const format = values.format ?? 'human';
    if (!['human', 'json', 'github'].includes(format))
      throw new UsageError(`--format: "${format}" is not human, json or github`);
    const src = readDirectory(positionals[0]);
    const dir = values['credentials-dir'];
    const credentials = dir ? { credentials: directoryLookup(dir) } : {};
    const result = compileSource(src.value, src.diagnostics, undefined, credentials);
    if (format === 'json') {
      console.log(formatJson(result.diagnostics));
    } else if (format === 'github') {
      const text = formatGithub(result.diagnostics);
      if (text) console.log(text);
    } else {
      const sources = new Map(src.value.files.map((f) => [f.path, f.text]));
      const text = formatHuman(result.diagnostics, sources);
      if (text) console.log(text);
      const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
      const warnings = result.diagnostics.filter((d) => d.severity === 'warning').length;
      console.log(
        result.ok
          ? `ok: ${src.value.files.length} files, ${result.proxies.size} proxies, ${warnings} warnings (revision ${result.revision})`
          : `rejected: ${errors} errors, ${warnings} warnings (revision ${result.revision})`,
      );
    }
    return result.ok ? 0 : 1;
  });
}
