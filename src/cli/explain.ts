/**
 * `chancery explain`: why a request would be allowed or denied, from policy alone, naming the deciding rule.
 */
import { compileSource } from '../compiler.js';
import { formatHuman } from '../diag/format.js';
import { explain, ExplainError, formatExplanation } from '../explain/explain.js';
import { readDirectory } from '../source/directory.js';
import { command, DEFAULT_CONFIG_DIR, parse, UsageError } from './args.js';
import { DEFAULT_STATE_DIR } from './admin-client.js';
import { registeredInstances } from './registered.js';

const HELP = `Usage: chancery explain [--config DIR] --from NAMESPACE/WORKLOAD|SERVICE --to HOST[:PORT]
                        [--method GET] [--path /x] [--header k=v ...] [--jwt-claims JSON] [--source-ip IP]
                        [--sni NAME] [--ext-authz allow|deny] [--all] [--json] [--state-dir DIR]

Answers ALLOW or DENY for one request and names the rule that decided (file:line), or says that the mesh default
did; --all lists every rule that matched. A request that CUSTOM rules send to an external authorizer DEPENDS on
its answer, which policy cannot know; --ext-authz says what to assume. Exit status 0 for ALLOW, 1 for DENY (or a
mixed or DEPENDS answer), 2 on bad usage.

From a gateway workload (one a Gateway selects), the request comes from outside: --to is the Host and the gateway
port it is sent to (e.g. shop.example.com:443), --source-ip the client's address (default 192.0.2.1), and the
gateway's own policies decide first (remote.ip from X-Forwarded-For with the Mesh's numTrustedProxies). At an L4
server (TCP, TLS passed through or terminated) it is a connection: --sni names the TLS server name the client sends
(default: the host of --to), which picks the filter chain.

Workloads registered into WorkloadGroups, as the control plane keeps them in <state-dir>/registrations.json
(default .chancery), are included like committed ones.`;

export function runExplain(argv: string[]): Promise<number> {
  return command(HELP, argv, () => {
    const { values } = parse(argv, {
      config: { type: 'string', default: DEFAULT_CONFIG_DIR },
      'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
      from: { type: 'string' },
      to: { type: 'string' },
      method: { type: 'string', default: 'GET' },
      path: { type: 'string', default: '/' },
      header: { type: 'string', multiple: true, default: [] },
      'jwt-claims': { type: 'string' },
      'ext-authz': { type: 'string' },
      'source-ip': { type: 'string' },
      sni: { type: 'string' },
      all: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    if (!values.from || !values.to) throw new UsageError('--from and --to are required');
    const headers: Record<string, string> = {};
    for (const h of values.header ?? []) {
      const i = h.indexOf('=');
      if (i <= 0) throw new UsageError(`--header "${h}" must be name=value`);
      // A header given twice is one sent twice: authorization and the application see its first value.
      const name = h.slice(0, i).toLowerCase();
      headers[name] ??= h.slice(i + 1);
    }
    let jwtClaims: Record<string, unknown> | undefined;
    if (values['jwt-claims']) {
      try {
        jwtClaims = JSON.parse(values['jwt-claims']) as Record<string, unknown>;
      } catch {
        throw new UsageError('--jwt-claims must be a JSON object, e.g. {"iss":"https://issuer","sub":"alice"}');
      }
    }
    const extAuthz = values['ext-authz'];
    if (extAuthz !== undefined && extAuthz !== 'allow' && extAuthz !== 'deny') {
      throw new UsageError('--ext-authz must be allow or deny');
    }
    const src = readDirectory(values.config!);
    // With the instances registered into WorkloadGroups that the control plane kept in its state directory.
    const result = compileSource(src.value, src.diagnostics, undefined, {
      registered: registeredInstances(values['state-dir']!),
    });
    if (!result.ok || !result.model) {
      console.error(formatHuman(result.diagnostics, new Map(src.value.files.map((f) => [f.path, f.text]))));
      return 2;
    }
    try {
      const sourceIp = values['source-ip'] ? { sourceIp: values['source-ip'] } : {};
      const sni = values.sni ? { sni: values.sni } : {};
      const asked = { from: values.from, to: values.to, method: values.method!, path: values.path!, headers };
      const answer = extAuthz ? { extAuthz: extAuthz as 'allow' | 'deny' } : {};
      const extra = { ...(jwtClaims ? { jwtClaims } : {}), ...answer, ...sourceIp, ...sni };
      const e = explain(result.model, { ...asked, ...extra });
      console.log(values.json ? JSON.stringify(e, null, 2) : formatExplanation(e, values.all!));
      return e.verdict === 'ALLOW' ? 0 : 1;
    } catch (err) {
      if (err instanceof ExplainError) throw new UsageError(err.message);
      throw err;
    }
  });
}
