/**
 * Stage: explain (Envoy-free). Who may talk to whom, from policy alone: for every caller workload and every
 * workload behind a service in its egress scope, whether some request could be allowed, with which ports,
 * methods and paths (summarised from the rules that allow it), and under which mTLS mode. Connections the sidecars
 * cannot make (plaintext to a STRICT callee, mTLS to a DISABLE one) are no edges, and a plaintext connection carries
 * no caller identity, as in explain.ts. Flags over-broad rules (ALLOW without `from`), edges where plaintext is
 * accepted, edges sent in plaintext, and edges an external authorizer (CUSTOM) decides some requests of. A gateway
 * adds edges from `outside` to itself (one per server its own policies let some request through) and from itself
 * to the workloads its routes reach.
 */
import { formatOrigin } from '../diag/diagnostic.js';
import { workloadById } from '../model/index.js';
import { endpointPort, labelsMatch, type MeshModel, type Service } from '../model/mesh-model.js';
import { subsetOf } from '../model/routing.js';
import { isLoopback, servicesInScope } from '../model/sidecars.js';
import { isHttpProtocol } from '../policy/types.js';
import { connection, proxyOf } from './explain.js';
import type { AuthzRuleIR, PermissionLeaf, PrincipalLeaf, StringMatcherIR, Tree } from '../ir/authz.js';
import type { InboundSecurityIR } from '../ir/types.js';
import { routeTableId } from '../ir/routes.js';
import { isGatewayWorkload } from '../model/gateways.js';
import { ruleMatches, type RequestFacts } from './authz.js';

/** The caller of an ingress edge: any client outside the mesh, arriving at a gateway. */
export const OUTSIDE = 'outside';

export interface Edge {
  /** A workload, or `outside` for requests arriving at a gateway. */
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
  /** Workloads that registered themselves, by id: the WorkloadGroup of each. */
  registered: Record<string, string>;
  edges: Edge[];
}

/** Three-valued: a leaf that depends on the request (headers, claims, paths...) may hold or not. */
type Maybe = true | false | 'maybe';

function maybeHolds<L>(t: Tree<L>, leaf: (l: L) => Maybe): Maybe {
  switch (t.op) {
    case 'any':
      return true;
    case 'leaf':
      return leaf(t.leaf);
    case 'not': {
      const v = maybeHolds(t.of, leaf);
      return v === 'maybe' ? v : !v;
    }
    case 'and': {
      const vs = t.of.map((x) => maybeHolds(x, leaf));
      return vs.includes(false) ? false : vs.includes('maybe') ? 'maybe' : true;
    }
    case 'or': {
      const vs = t.of.map((x) => maybeHolds(x, leaf));
      return vs.includes(true) ? true : vs.includes('maybe') ? 'maybe' : false;
    }
  }
}

/** Whether a rule admits this caller on this port: the connection decides its identity and address leaves. */
function couldMatch(rule: AuthzRuleIR, facts: RequestFacts): { principal: Maybe; permission: Maybe } {
  const one = { ...rule, permission: { op: 'any' } as const };
  return couldMatchWith(rule, facts.port, (l) =>
    l.kind === 'header' || l.kind === 'claim'
      ? 'maybe'
      : ruleMatches({ ...one, principal: { op: 'leaf', leaf: l } }, facts),
  );
}

function couldMatchWith(
  rule: AuthzRuleIR,
  port: number,
  principalLeaf: (l: PrincipalLeaf) => Maybe,
): { principal: Maybe; permission: Maybe } {
  const principal = maybeHolds(rule.principal, principalLeaf);
  const permission = maybeHolds(rule.permission, (l): Maybe =>
    l.kind === 'destinationPort' ? l.port === port : 'maybe',
  );
  return { principal, permission };
}

/**
 * Outside -> gateway: per server (filter chain), whether the gateway's own policies let some request in. An outside
 * client has no mesh identity; its address and headers may be anything, and a client certificate (MUTUAL) may
 * carry any name, so those leaves may hold or not.
 */
function ingressEdges(model: MeshModel): Edge[] {
  const edges: Edge[] = [];
  for (const gw of model.workloads.filter((w) => isGatewayWorkload(model, w))) {
    const ir = proxyOf(model, gw.id);
    for (const l of ir.listeners.filter((x) => x.gateway)) {
      const sec = l.security!;
      for (const chain of l.gateway!.chains) {
        if (!chain.rds) continue; // an L4 chain (tcp or tls route): no HTTP edge to judge here
        if (chain.tls?.mode === 'ISTIO_MUTUAL') continue; // only mesh workloads complete its handshake
        const rds = chain.rds;
        const hosts = ir.routeTables.find((t) => routeTableId(t.key) === routeTableId(rds))?.virtualHosts ?? [];
        const served = hosts.filter((v) => !v.routes.every((r) => r.action.kind === 'redirect' && r.action.https));
        if (served.length === 0) continue; // nothing served, or every request redirected to https
        const certificate = chain.tls !== undefined && chain.tls.mode !== 'SIMPLE';
        const leaf = (x: PrincipalLeaf): Maybe => (x.kind === 'peer' ? (certificate ? 'maybe' : false) : 'maybe');
        const enforced = (a: string) => sec.policies.filter((p) => p.action === a && !p.dryRun).flatMap((p) => p.rules);
        const deny = enforced('DENY').map((r) => ({ r, m: couldMatchWith(r, l.port, leaf) }));
        if (deny.some(({ m }) => m.principal === true && m.permission === true)) continue;
        type Judged = { m: { principal: Maybe; permission: Maybe } };
        const possible = ({ m }: Judged) => m.principal !== false && m.permission !== false;
        const allow = enforced('ALLOW')
          .map((r) => ({ r, m: couldMatchWith(r, l.port, leaf) }))
          .filter(possible);
        const byDefault = sec.policies.every((p) => p.action !== 'ALLOW' || p.dryRun) && sec.defaultAction === 'ALLOW';
        if (allow.length === 0 && !byDefault) continue;
        const except = [...new Set(deny.filter(possible).flatMap(({ r }) => carvedOut(r)))].sort();
        const tls = chain.tls ? `TLS ${chain.tls.mode} (credential ${chain.tls.credential})` : 'plaintext';
        edges.push({
          from: OUTSIDE,
          to: gw.id,
          service: served.flatMap((v) => v.domains).join(','),
          port: l.port,
          mtls: 'DISABLE',
          methods: byDefault ? ['*'] : summarise(allow.map(({ r }) => methodsOf(r))),
          paths: byDefault ? ['*'] : summarise(allow.map(({ r }) => pathsOf(r))),
          except,
          via: byDefault ? ['mesh default ALLOW'] : allow.map(({ r }) => `${r.name} (${formatOrigin(r.at)})`),
          conditional: !byDefault && allow.every(({ m }) => m.principal === 'maybe'),
          flags: [`from outside, ${tls}`, ...(byDefault ? ['allowed by the mesh default'] : [])],
        });
      }
    }
  }
  return edges;
}

/** The positive leaves of a permission tree (under no `not`), to summarise what a rule lets through. */
function positiveLeaves(t: Tree<PermissionLeaf>, out: PermissionLeaf[] = []): PermissionLeaf[] {
  if (t.op === 'leaf') out.push(t.leaf);
  else if (t.op === 'and' || t.op === 'or') for (const x of t.of) positiveLeaves(x, out);
  return out;
}

/** A matcher written back in Istio's form, for people. */
function shown(m: StringMatcherIR): string {
  if ('regex' in m) return m.regex === '.+' ? '*' : `~${m.regex}`;
  if ('exact' in m) return m.exact;
  if ('prefix' in m) return `${m.prefix}*`;
  return `*${m.suffix}`;
}

function methodsOf(rule: AuthzRuleIR): string[] {
  return positiveLeaves(rule.permission).flatMap((l) =>
    l.kind === 'header' && l.header.name === ':method' && 'match' in l.header ? [shown(l.header.match)] : [],
  );
}

function pathsOf(rule: AuthzRuleIR): string[] {
  return positiveLeaves(rule.permission).flatMap((l) =>
    l.kind === 'path' ? [shown(l.match)] : l.kind === 'pathTemplate' ? [l.template] : [],
  );
}

/** What a DENY rule that may apply carves out of an edge: its paths, else its methods, else some requests. */
function carvedOut(r: AuthzRuleIR): string[] {
  const paths = pathsOf(r);
  if (paths.length > 0) return paths;
  const methods = methodsOf(r);
  return methods.length > 0 ? methods.map((x) => `${x} *`) : ['(some requests)'];
}

const summarise = (lists: string[][]): string[] => {
  if (lists.some((l) => l.length === 0)) return ['*'];
  const values = lists.flat();
  return values.includes('*') ? ['*'] : [...new Set(values)].sort();
};

/**
 * CUSTOM rules send requests to an external authorizer before DENY and ALLOW; the edge stays (it may allow them),
 * flagged with how much of it the provider decides.
 */
function extAuthzFlag(sec: InboundSecurityIR, facts: RequestFacts): string | undefined {
  if (!sec.extAuthz) return undefined;
  const rules = sec.policies.filter((p) => p.action === 'CUSTOM').flatMap((p) => p.rules);
  const could = rules
    .map((r) => ({ r, m: couldMatch(r, facts) }))
    .filter(({ m }) => m.principal !== false && m.permission !== false);
  if (could.length === 0) return undefined;
  const every = could.some(({ m }) => m.principal === true && m.permission === true);
  const name = sec.extAuthz.provider.name;
  if (every) return `ext-authz ${name} decides every request`;
  return `ext-authz ${name} decides some requests (${could.map(({ r }) => r.name).join(', ')})`;
}

export function buildGraph(model: MeshModel): Graph {
  const edges: Edge[] = [];
  for (const caller of model.workloads) {
    // HTTP ports through the HTTP egress listeners; a TCP port only through a TCP egress listener naming it.
    const tcp = proxyOf(model, caller.id)
      .listeners.filter((l) => l.direction === 'outbound' && l.tcp)
      .flatMap((l) => (l.tcp!.sni ?? [l.tcp!]).flatMap((t) => t.weighted?.map((c) => c.cluster) ?? [t.cluster]));
    const reachable = (svc: Service, port: number) =>
      tcp.some((k) => k.direction === 'outbound' && k.host === svc.host && k.port === port);
    for (const svc of servicesInScope(caller, model)) {
      for (const sp of svc.ports.filter((p) => isHttpProtocol(p.protocol) || reachable(svc, p.number))) {
        for (const ep of svc.endpoints) {
          const callee = workloadById(model, ep.workload);
          if (!callee || callee.id === caller.id) continue;
          const port = endpointPort(svc, sp, ep);
          // The caller's cluster towards this endpoint (a VirtualService may route through subsets): whether the
          // connection is made at all, and whether it carries the caller's identity (explain.ts's connection()).
          const cluster = proxyOf(model, caller.id).clusters.find(
            (c) =>
              c.key.direction === 'outbound' &&
              c.key.host === svc.host &&
              c.key.port === sp.number &&
              (!c.key.subset || labelsMatch(subsetOf(model, svc.host, c.key.subset)?.labels ?? {}, ep.labels)),
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
          const enforced = (a: string) => sec.policies.filter((p) => p.action === a && !p.dryRun);
          const denyRules = enforced('DENY').flatMap((p) => p.rules.map((r) => ({ r, m: couldMatch(r, facts) })));
          const blanketDeny = denyRules.some(({ m }) => m.principal === true && m.permission === true);
          if (blanketDeny) continue;
          const allowPolicies = enforced('ALLOW');
          const denied = denyRules
            .filter(({ m }) => m.principal !== false && m.permission !== false)
            .flatMap(({ r }) => carvedOut(r));
          const except = [...new Set(denied)].sort();
          const flags: string[] = [];
          const ext = extAuthzFlag(sec, facts);
          if (ext) flags.push(ext);
          if (sec.mtls !== 'STRICT') flags.push(`plaintext accepted (${sec.mtls})`);
          if (conn.transport === 'plaintext') flags.push('sent in plaintext: no caller identity');
          if (allowPolicies.length === 0) {
            if (sec.defaultAction === 'DENY') continue;
            const via = ['mesh default ALLOW'];
            const all = ['*'];
            edges.push({
              from: caller.id,
              to: callee.id,
              service: svc.host,
              port,
              mtls: sec.mtls,
              methods: all,
              paths: all,
              except,
              via,
              conditional: false,
              flags: [...flags, 'allowed by the mesh default'],
            });
            continue;
          }
          const onPort = allowPolicies
            .flatMap((p) => p.rules.map((r) => ({ p, r, m: couldMatch(r, facts) })))
            .filter(({ m }) => m.principal !== false && m.permission !== false);
          if (onPort.length === 0) continue;
          for (const { r } of onPort)
            if (r.principal.op === 'any') flags.push(`over-broad: ${r.name} has no "from" (any caller)`);
          edges.push({
            from: caller.id,
            to: callee.id,
            service: svc.host,
            port,
            mtls: sec.mtls,
            methods: summarise(onPort.map(({ r }) => methodsOf(r))),
            paths: summarise(onPort.map(({ r }) => pathsOf(r))),
            except,
            via: onPort.map(({ r }) => `${r.name} (${formatOrigin(r.at)})`),
            conditional: onPort.every(({ m }) => m.principal === 'maybe'),
            flags: [...new Set(flags)],
          });
        }
      }
    }
  }
  edges.push(...ingressEdges(model));
  const key = (e: Edge) => `${e.from}|${e.to}|${e.port}|${e.service}`;
  edges.sort((a, b) => key(a).localeCompare(key(b)));
  const ids = model.workloads.flatMap((w) => (w.registered ? [[w.id, w.registered.group] as const] : []));
  const registered = Object.fromEntries(ids);
  return { workloads: model.workloads.map((w) => w.id), registered, edges };
}

export function formatGraph(g: Graph, format: 'table' | 'json' | 'dot' | 'mermaid'): string {
  if (format === 'json') return JSON.stringify(g, null, 2);
  // A registered workload is shown as `id [registered]`.
  const name = (w: string) => (g.registered[w] ? `${w} [registered]` : w);
  const label = (e: Edge) =>
    `${e.port} ${e.methods.join(',')} ${e.paths.join(',')}${e.except.length ? ` except ${e.except.join(',')}` : ''}${e.mtls === 'STRICT' ? '' : ` [${e.mtls}]`}${e.conditional ? ' (conditional)' : ''}`;
  if (format === 'dot') {
    const lines = ['digraph mesh {', '  rankdir=LR;', '  node [shape=box, style=rounded];'];
    const attrs = (w: string) => (g.registered[w] ? ` [label="${name(w)}", style="rounded,dashed"]` : '');
    for (const w of g.workloads) lines.push(`  "${w}"${attrs(w)};`);
    for (const e of g.edges)
      lines.push(`  "${e.from}" -> "${e.to}" [label="${label(e)}"${e.flags.length > 0 ? ', color=red' : ''}];`);
    lines.push('}');
    return lines.join('\n');
  }
  if (format === 'mermaid') {
    const id = (w: string) => w.replace(/[^A-Za-z0-9]/g, '_');
    const lines = ['flowchart LR'];
    for (const w of g.workloads) lines.push(`  ${id(w)}["${name(w)}"]`);
    for (const e of g.edges) lines.push(`  ${id(e.from)} -->|"${label(e)}"| ${id(e.to)}`);
    return lines.join('\n');
  }
  const rows = [['FROM', 'TO', 'SERVICE', 'PORT', 'MTLS', 'METHODS', 'PATHS', 'EXCEPT', 'FLAGS']];
  for (const e of g.edges) {
    const flags = e.flags.join('; ') + (e.conditional ? (e.flags.length ? '; ' : '') + 'conditional' : '');
    const what = [e.service, String(e.port), e.mtls, e.methods.join(','), e.paths.join(','), e.except.join(',') || '-'];
    rows.push([name(e.from), name(e.to), ...what, flags]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
