/**
 * Stage: explain (Envoy-free). Who may talk to whom, from policy alone: for every caller workload and every
 * workload behind a service in its egress scope, whether some request could be allowed, with which ports,
 * methods and paths (summarised from the rules that allow it), and under which mTLS mode. Connections the sidecars
 * cannot make (plaintext to a STRICT callee, mTLS to a DISABLE one) are no edges, and a plaintext connection carries
 * no caller identity, as in explain.ts. Flags over-broad rules (ALLOW without `from`), edges where plaintext is
 * accepted, and edges sent in plaintext.
 */
import { formatOrigin } from '../diag/diagnostic.js';
import { workloadById } from '../model/index.js';
import { endpointPort, labelsMatch, type MeshModel } from '../model/mesh-model.js';
import { subsetOf } from '../model/routing.js';
import { isLoopback, servicesInScope } from '../model/sidecars.js';
import { isHttpProtocol } from '../policy/types.js';
import { connection, proxyOf } from './explain.js';
import type { AuthzRule, Match } from '../policy/security-types.js';
import { ruleMatches, type RequestFacts } from './authz.js';

export interface Edge {
  from: string;
  to: string;
  service: string;
  port: number;
  mtls: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  /** `*` for "any" in each list. */
  methods: string[];
  paths: string[];
  /** Paths a DENY rule refuses this caller, summarised. */
  except: string[];
  /** The rules that allow it (`ns/name/rules[i]` at file:line), or the mesh default. */
  via: string[];
  /** The allowing rule also needs a JWT or other request attributes. */
  conditional: boolean;
  flags: string[];
}

export interface Graph {
  workloads: string[];
  edges: Edge[];
}

const summarise = (m: Match[]): string[] => {
  const values = m.flatMap((x) => (x.values ? x.values : ['*']));
  return values.length === 0 || values.includes('*') ? ['*'] : [...new Set(values)].sort();
};

/** Does a rule's source side admit this caller (ignoring request-level attributes)? */
function fromAdmits(rule: AuthzRule, facts: RequestFacts): boolean {
  const l4Rule: AuthzRule = { ...rule, to: [], when: rule.when.filter((c) => ['source.ip', 'remote.ip', 'source.principal', 'source.namespace'].includes(c.key)) };
  return ruleMatches(l4Rule, facts, true);
}

export function buildGraph(model: MeshModel): Graph {
  const edges: Edge[] = [];
  for (const caller of model.workloads) {
    for (const svc of servicesInScope(caller, model)) {
      // Sidecars reach other services through their HTTP egress listeners only.
      for (const sp of svc.ports.filter((p) => isHttpProtocol(p.protocol))) {
        for (const ep of svc.endpoints) {
          const callee = workloadById(model, ep.workload);
          if (!callee || callee.id === caller.id) continue;
          const port = endpointPort(svc, sp, ep);
          // The caller's cluster towards this endpoint (a VirtualService may route through subsets): whether the
          // connection is made at all, and whether it carries the caller's identity (explain.ts's connection()).
          const cluster = proxyOf(model, caller.id).clusters.find(
            (c) => c.key.direction === 'outbound' && c.key.host === svc.host && c.key.port === sp.number && (!c.key.subset || labelsMatch(subsetOf(model, svc.host, c.key.subset)?.labels ?? {}, ep.labels)),
          );
          if (!cluster) continue;
          const conn = connection(model, cluster, callee, port);
          if (conn.transport === 'refused') continue;
          const sec = conn.inbound.security!;
          const facts: RequestFacts = {
            ...(conn.transport === 'mTLS' ? { principal: caller.identity } : {}),
            sourceIp: isLoopback(ep.address) ? '127.0.0.1' : caller.address,
            host: svc.host,
            port,
            method: 'GET',
            path: '/',
            headers: {},
          };
          const blanketDeny = sec.policies.some((p) => p.action === 'DENY' && p.rules.some((r) => r.to.length === 0 && r.when.length === 0 && fromAdmits(r, facts)));
          if (blanketDeny) continue;
          const allowPolicies = sec.policies.filter((p) => p.action === 'ALLOW');
          const denied = sec.policies
            .filter((p) => p.action === 'DENY')
            .flatMap((p) => p.rules)
            .filter((r) => fromAdmits(r, facts) && r.to.length > 0)
            .flatMap((r) => r.to.flatMap((o) => o.paths.values ?? (o.methods.values ? o.methods.values.map((m) => `${m} *`) : ['(some requests)'])));
          const except = [...new Set(denied)].sort();
          const flags: string[] = [];
          if (sec.mtls !== 'STRICT') flags.push(`plaintext accepted (${sec.mtls})`);
          if (conn.transport === 'plaintext') flags.push('sent in plaintext: no caller identity');
          if (allowPolicies.length === 0) {
            if (sec.defaultAction === 'DENY') continue;
            edges.push({ from: caller.id, to: callee.id, service: svc.host, port, mtls: sec.mtls, methods: ['*'], paths: ['*'], except, via: ['mesh default ALLOW'], conditional: false, flags: [...flags, 'allowed by the mesh default'] });
            continue;
          }
          const allowing = allowPolicies.flatMap((p) => p.rules.map((r, i) => ({ p, r, i }))).filter(({ r }) => fromAdmits(r, facts));
          const onPort = allowing.filter(({ r }) => r.to.length === 0 || r.to.some((o) => !o.ports.values || o.ports.values.includes(String(port))));
          if (onPort.length === 0) continue;
          const ops = onPort.flatMap(({ r }) => (r.to.length === 0 ? [{ methods: {} as Match, paths: {} as Match }] : r.to.map((o) => ({ methods: o.methods, paths: o.paths }))));
          for (const { r, p, i } of onPort) if (r.from.length === 0) flags.push(`over-broad: ${p.name}/rules[${i}] has no "from" (any caller)`);
          edges.push({
            from: caller.id,
            to: callee.id,
            service: svc.host,
            port,
            mtls: sec.mtls,
            methods: summarise(ops.map((o) => o.methods)),
            paths: summarise(ops.map((o) => o.paths)),
            except,
            via: onPort.map(({ p, i, r }) => `${p.name}/rules[${i}] (${formatOrigin(r.at)})`),
            conditional: onPort.every(({ r }) => r.from.some((s) => s.requestPrincipals.values) || r.when.length > 0),
            flags: [...new Set(flags)],
          });
        }
      }
    }
  }
  edges.sort((a, b) => `${a.from}|${a.to}|${a.port}`.localeCompare(`${b.from}|${b.to}|${b.port}`));
  return { workloads: model.workloads.map((w) => w.id), edges };
}

export function formatGraph(g: Graph, format: 'table' | 'json' | 'dot' | 'mermaid'): string {
  if (format === 'json') return JSON.stringify(g, null, 2);
  const label = (e: Edge) => `${e.port} ${e.methods.join(',')} ${e.paths.join(',')}${e.except.length ? ` except ${e.except.join(',')}` : ''}${e.mtls === 'STRICT' ? '' : ` [${e.mtls}]`}${e.conditional ? ' (conditional)' : ''}`;
  if (format === 'dot') {
    const lines = ['digraph mesh {', '  rankdir=LR;', '  node [shape=box, style=rounded];'];
    for (const w of g.workloads) lines.push(`  "${w}";`);
    for (const e of g.edges) lines.push(`  "${e.from}" -> "${e.to}" [label="${label(e)}"${e.flags.length > 0 ? ', color=red' : ''}];`);
    lines.push('}');
    return lines.join('\n');
  }
  if (format === 'mermaid') {
    const id = (w: string) => w.replace(/[^A-Za-z0-9]/g, '_');
    const lines = ['flowchart LR'];
    for (const w of g.workloads) lines.push(`  ${id(w)}["${w}"]`);
    for (const e of g.edges) lines.push(`  ${id(e.from)} -->|"${label(e)}"| ${id(e.to)}`);
    return lines.join('\n');
  }
  const rows = [['FROM', 'TO', 'SERVICE', 'PORT', 'MTLS', 'METHODS', 'PATHS', 'EXCEPT', 'FLAGS']];
  for (const e of g.edges) rows.push([e.from, e.to, e.service, String(e.port), e.mtls, e.methods.join(','), e.paths.join(','), e.except.join(',') || '-', e.flags.join('; ') + (e.conditional ? (e.flags.length ? '; ' : '') + 'conditional' : '')]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
