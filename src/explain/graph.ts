/**
 * Stage: explain (Envoy-free). Who may talk to whom, from policy alone: for every caller workload and every
 * workload behind a service in its egress scope, whether some request could be allowed, with which ports,
 * methods and paths (summarised from the rules that allow it), and under which mTLS mode. Connections the sidecars
 * cannot make (plaintext to a STRICT callee, mTLS to a DISABLE one) are no edges, and a plaintext connection carries
 * no caller identity, as in explain.ts. Flags over-broad rules (ALLOW without `from`), edges where plaintext is
 * accepted, edges sent in plaintext, and edges an external authorizer (CUSTOM) decides some requests of. A gateway
 * adds edges from `outside` to itself (one per filter chain its own policies, HTTP or L4, let something through),
 * from itself to the workloads its routes and tcp_proxy chains reach, and from the sidecars that connect to one of
 * its servers (gateway-connection.ts, as explain judges it) and are admitted. A route to a service no sidecar stands
 * behind is an edge to its host. Every judgement reads the lowered trees (ir/authz.ts) through authz.ts's leaves.
 */
import { formatOrigin } from '../diag/diagnostic.js';
import { serviceByHost, workloadById } from '../model/index.js';
import { clusterId } from '../ir/clusters.js';
import { destinationEndpoints, originationSummary } from './upstream-tls.js';
import { endpointPort, labelsMatch, type MeshModel, type Service, type Workload } from '../model/mesh-model.js';
import { subsetOf } from '../model/routing.js';
import { isLoopback, servicesInScope } from '../model/sidecars.js';
import { isHttpProtocol } from '../policy/types.js';
import { connection, proxyOf } from './explain.js';
import type { AuthzRuleIR, PermissionLeaf, PrincipalLeaf, StringMatcherIR, Tree } from '../ir/authz.js';
import type { ClusterIR, ClusterKey, GatewayChainIR, InboundSecurityIR, ProxyIR, RouteTableKey } from '../ir/types.js';
import { routeTableId } from '../ir/routes.js';
import { isGatewayWorkload } from '../model/gateways.js';
import { principalLeaf, stringMatcherMatches, type RequestFacts } from './authz.js';
import { chainSecurity, gatewayConnection } from './gateway-connection.js';

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
  /** Hosts of services outside the mesh that some proxy's routes send to (edges end at the host). */
  external?: string[];
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

/** A principal leaf for a known caller: the connection decides its identity and address leaves. */
const knownCaller =
  (facts: RequestFacts) =>
  (l: PrincipalLeaf): Maybe =>
    l.kind === 'header' || l.kind === 'claim' ? 'maybe' : principalLeaf(l, facts);

/** Whether a rule admits this caller on this port. */
function couldMatch(rule: AuthzRuleIR, facts: RequestFacts): { principal: Maybe; permission: Maybe } {
  return couldMatchWith(rule, facts.port, knownCaller(facts));
}

/**
 * The SNI a chain can see: none on plaintext, one of its server names (exact ones decide, wildcards may or may
 * not), anything on a catch-all TLS chain. Undefined: not known (a sidecar's listener).
 */
type SniSeen = { tls: boolean; serverNames: string[] };

function sniLeaf(m: StringMatcherIR, seen: SniSeen | undefined): Maybe {
  if (!seen) return 'maybe';
  if (!seen.tls && seen.serverNames.length === 0) return false;
  const names = seen.serverNames;
  if (names.length === 0 || names.some((n) => n.includes('*'))) return 'maybe';
  const hits = names.filter((n) => stringMatcherMatches(m, n)).length;
  return hits === 0 ? false : hits === names.length ? true : 'maybe';
}

function couldMatchWith(
  rule: AuthzRuleIR,
  port: number,
  principalLeaf: (l: PrincipalLeaf) => Maybe,
  sni?: SniSeen,
): { principal: Maybe; permission: Maybe } {
  const principal = maybeHolds(rule.principal, principalLeaf);
  const permission = maybeHolds(rule.permission, (l): Maybe =>
    l.kind === 'destinationPort' ? l.port === port : l.kind === 'sni' ? sniLeaf(l.match, sni) : 'maybe',
  );
  return { principal, permission };
}

type Judged = { r: AuthzRuleIR; m: { principal: Maybe; permission: Maybe } };

/** What enforced policy lets through on a port: the ALLOW rules that may match (or the default), and carve-outs. */
interface Admission {
  allow: Judged[];
  byDefault: boolean;
  except: string[];
}

/**
 * Whether some request (or connection) could be allowed, judged on the lowered trees: undefined when a DENY rule
 * surely matches, or no ALLOW rule may (and the mesh default is DENY, or ALLOW policies apply).
 */
function admission(sec: InboundSecurityIR, port: number, leaf: (l: PrincipalLeaf) => Maybe, sni?: SniSeen) {
  const possible = ({ m }: Judged) => m.principal !== false && m.permission !== false;
  const enforced = (a: string) => sec.policies.filter((p) => p.action === a && !p.dryRun);
  const judged = (a: string) =>
    enforced(a)
      .flatMap((p) => p.rules)
      .map((r) => ({ r, m: couldMatchWith(r, port, leaf, sni) }));
  const deny = judged('DENY');
  if (deny.some(({ m }) => m.principal === true && m.permission === true)) return undefined;
  const byDefault = enforced('ALLOW').length === 0;
  if (byDefault && sec.defaultAction === 'DENY') return undefined;
  const allow = judged('ALLOW').filter(possible);
  if (!byDefault && allow.length === 0) return undefined;
  const carved = deny.filter(possible).flatMap(({ r }) => carvedOut(r, sni !== undefined));
  return { allow, byDefault, except: [...new Set(carved)].sort() } satisfies Admission;
}

/** An edge from what its admission allows; `flags` come first, the mesh default's last. */
function edgeOf(e: Pick<Edge, 'from' | 'to' | 'service' | 'port' | 'mtls'>, a: Admission, flags: string[]): Edge {
  const all = ['*'];
  return {
    ...e,
    methods: a.byDefault ? all : summarise(a.allow.map(({ r }) => methodsOf(r))),
    paths: a.byDefault ? all : summarise(a.allow.map(({ r }) => pathsOf(r))),
    except: a.except,
    via: a.byDefault ? ['mesh default ALLOW'] : a.allow.map(({ r }) => `${r.name} (${formatOrigin(r.at)})`),
    conditional: !a.byDefault && a.allow.every(({ m }) => m.principal === 'maybe'),
    flags: [...new Set([...flags, ...(a.byDefault ? ['allowed by the mesh default'] : [])])],
  };
}

/** How an outside client's TLS meets a chain, for people. */
function outsideTls(chain: GatewayChainIR): string {
  if (chain.tls) return `TLS ${chain.tls.mode} (credential ${chain.tls.credential})`;
  return chain.serverNames.length > 0 ? 'TLS PASSTHROUGH by SNI' : chain.tcp ? 'TCP' : 'plaintext';
}

/**
 * Outside -> gateway: per server (filter chain), whether the gateway's own policies let some request or connection
 * in (an L4 chain by its L4 rules). An outside client has no mesh identity; its address and headers may be
 * anything, and a client certificate (MUTUAL) may carry any name, so those leaves may hold or not.
 */
function ingressEdges(model: MeshModel): Edge[] {
  const edges: Edge[] = [];
  for (const gw of model.workloads.filter((w) => isGatewayWorkload(model, w))) {
    const ir = proxyOf(model, gw.id);
    for (const l of ir.listeners.filter((x) => x.gateway)) {
      for (const chain of l.gateway!.chains) {
        if (chain.tls?.mode === 'ISTIO_MUTUAL') continue; // only mesh workloads complete its handshake
        const served = chain.rds ? servedHosts(ir, chain.rds) : chain.serverNames;
        if (chain.rds && served.length === 0) continue; // nothing served, or every request redirected to https
        const certificate = chain.tls !== undefined && chain.tls.mode !== 'SIMPLE';
        const leaf = (x: PrincipalLeaf): Maybe => (x.kind === 'peer' ? (certificate ? 'maybe' : false) : 'maybe');
        const sni = chain.tcp ? { tls: chain.tls !== undefined, serverNames: chain.serverNames } : undefined;
        const a = admission(chainSecurity(l, chain), l.port, leaf, sni);
        if (!a) continue;
        const route = chain.tcp ? `, tcp route ${chain.tcp.route}` : '';
        const service = served.join(',') || '*';
        const e = { from: OUTSIDE, to: gw.id, service, port: l.port, mtls: 'DISABLE' as const };
        edges.push(edgeOf(e, a, [`from outside, ${outsideTls(chain)}${route}`]));
      }
    }
  }
  return edges;
}

/** The domains of an HTTP chain's route table that some request is served for (not only redirected to https). */
function servedHosts(ir: ProxyIR, rds: RouteTableKey): string[] {
  const hosts = ir.routeTables.find((t) => routeTableId(t.key) === routeTableId(rds))?.virtualHosts ?? [];
  const served = hosts.filter((v) => !v.routes.every((r) => r.action.kind === 'redirect' && r.action.https));
  return served.flatMap((v) => v.domains);
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
function carvedOut(r: AuthzRuleIR, l4 = false): string[] {
  const paths = pathsOf(r);
  if (paths.length > 0) return paths;
  const methods = methodsOf(r);
  return methods.length > 0 ? methods.map((x) => `${x} *`) : [l4 ? '(some connections)' : '(some requests)'];
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

/** The clusters a proxy's TCP egress listeners and gateway L4 chains forward to: the TCP ports it reaches. */
function tcpClusters(ir: ProxyIR): ClusterKey[] {
  const forwards = ir.listeners.flatMap((l) => [
    ...(l.direction === 'outbound' && l.tcp ? (l.tcp.sni ?? [l.tcp]) : []),
    ...(l.gateway?.chains.flatMap((c) => c.tcp ?? []) ?? []),
  ]);
  return forwards.flatMap((t) => t.weighted?.map((c) => c.cluster) ?? [t.cluster]);
}

type Endpoint = Service['endpoints'][number];

/**
 * Caller -> one endpoint's workload: the connection its cluster makes (explain.ts's connection(), or a gateway's
 * server), then what the callee's lowered policies could let through.
 */
function meshEdge(model: MeshModel, caller: Workload, svc: Service, ep: Endpoint, port: number, cs: ClusterIR[]) {
  const callee = workloadById(model, ep.workload)!;
  const facts = (mTLS: boolean): RequestFacts => ({
    ...(mTLS ? { principal: caller.identity } : {}),
    sourceIp: isLoopback(ep.address) ? '127.0.0.1' : caller.address,
    host: svc.host,
    port,
    method: 'GET',
    path: '/',
    headers: {},
  });
  const base = { from: caller.id, to: callee.id, service: svc.host, port };
  if (isGatewayWorkload(model, callee)) {
    // A sidecar to a gateway's server (an egress gateway): the first of its clusters whose connection is made.
    const conns = cs.map((c) => gatewayConnection(model, c, callee, port));
    const conn = conns.find((c): c is Exclude<typeof c, { transport: 'refused' }> => c.transport !== 'refused');
    if (!conn) return undefined;
    const f = facts(conn.transport === 'mTLS');
    const a = admission(conn.security, port, knownCaller(f));
    if (!a) return undefined;
    const mode = conn.chain.tls?.mode ?? 'plaintext';
    const flags = [`to the gateway's server ${conn.chain.servers.join(', ')} (${mode})`];
    if (conn.transport === 'plaintext') flags.push('sent in plaintext: no caller identity');
    return edgeOf({ ...base, mtls: conn.transport === 'mTLS' ? 'STRICT' : 'DISABLE' }, a, [...flags, ...broad(a)]);
  }
  const conn = connection(model, cs[0], callee, port);
  if (conn.transport === 'refused') return undefined;
  const sec = conn.inbound.security!;
  const f = facts(conn.transport === 'mTLS');
  const a = admission(sec, port, knownCaller(f));
  if (!a) return undefined;
  const flags: string[] = [];
  const ext = extAuthzFlag(sec, f);
  if (ext) flags.push(ext);
  if (sec.mtls !== 'STRICT') flags.push(`plaintext accepted (${sec.mtls})`);
  if (conn.transport === 'plaintext') flags.push('sent in plaintext: no caller identity');
  return edgeOf({ ...base, mtls: sec.mtls }, a, [...flags, ...broad(a)]);
}

/** The outbound clusters a proxy's routes and TCP forwards send to (not every cluster it has). */
function routedClusters(ir: ProxyIR): ClusterKey[] {
  const http = ir.routeTables.flatMap((t) =>
    t.virtualHosts.flatMap((v) =>
      v.routes.flatMap((r) => (r.action.kind === 'forward' ? r.action.clusters.map((c) => c.cluster) : [])),
    ),
  );
  return [...http, ...tcpClusters(ir)];
}

/**
 * Caller -> a service no sidecar stands behind (outside the mesh), for each one its routes send to: nothing at the
 * other end enforces policy, so the edge is what the caller's proxy forwards (how: upstream-tls.ts).
 */
function externalEdges(model: MeshModel, caller: Workload, ir: ProxyIR): Edge[] {
  const edges = new Map<string, Edge>();
  for (const k of routedClusters(ir)) {
    if (k.direction !== 'outbound' || edges.has(`${k.host}:${k.port}`)) continue;
    const svc = serviceByHost(model, k.host);
    const cluster = ir.clusters.find((c) => clusterId(c.key) === clusterId(k));
    if (!svc) continue;
    const eps = destinationEndpoints(svc, cluster);
    const dynamic = cluster?.discovery === 'dfp'; // the name each request asks for
    if (!dynamic && (eps.length === 0 || eps.some((e) => e.workload && workloadById(model, e.workload)))) continue;
    const sent = cluster?.originate
      ? originationSummary(cluster.originate, 'the caller')
      : 'no TLS originated: sent as the caller sends it';
    edges.set(`${k.host}:${k.port}`, {
      from: caller.id,
      to: svc.host,
      service: svc.host,
      port: k.port,
      mtls: 'DISABLE',
      methods: ['*'],
      paths: ['*'],
      except: [],
      via: ['outside the mesh: no sidecar enforces policy there'],
      conditional: false,
      flags: ['to a service outside the mesh', sent],
    });
  }
  return [...edges.values()];
}

/** ALLOW rules without `from`: any caller. */
const broad = (a: Admission) =>
  a.allow
    .filter(({ r }) => r.principal.op === 'any')
    .map(({ r }) => `over-broad: ${r.name} has no "from" (any caller)`);

export function buildGraph(model: MeshModel): Graph {
  const edges: Edge[] = [];
  for (const caller of model.workloads) {
    const ir = proxyOf(model, caller.id);
    // HTTP ports through the HTTP egress listeners (or a gateway's routes); a TCP port only through a TCP egress
    // listener or a gateway's L4 chain forwarding to it.
    const tcp = tcpClusters(ir);
    const reachable = (svc: Service, port: number) =>
      tcp.some((k) => k.direction === 'outbound' && k.host === svc.host && k.port === port);
    for (const svc of servicesInScope(caller, model)) {
      for (const sp of svc.ports.filter((p) => isHttpProtocol(p.protocol) || reachable(svc, p.number))) {
        for (const ep of svc.endpoints) {
          const callee = workloadById(model, ep.workload);
          if (!callee || callee.id === caller.id) continue;
          // The caller's clusters towards this endpoint (a VirtualService may route through subsets).
          const cs = ir.clusters.filter(
            (c) =>
              c.key.direction === 'outbound' &&
              c.key.host === svc.host &&
              c.key.port === sp.number &&
              (!c.key.subset || labelsMatch(subsetOf(model, svc.host, c.key.subset)?.labels ?? {}, ep.labels)),
          );
          if (cs.length === 0) continue;
          const e = meshEdge(model, caller, svc, ep, endpointPort(svc, sp, ep), cs);
          if (e) edges.push(e);
        }
      }
    }
    edges.push(...externalEdges(model, caller, ir));
  }
  edges.push(...ingressEdges(model));
  const key = (e: Edge) => `${e.from}|${e.to}|${e.port}|${e.service}`;
  edges.sort((a, b) => key(a).localeCompare(key(b)));
  const ids = model.workloads.flatMap((w) => (w.registered ? [[w.id, w.registered.group] as const] : []));
  const registered = Object.fromEntries(ids);
  const external = [...new Set(edges.filter((e) => !e.to.includes('/')).map((e) => e.to))].sort();
  return {
    workloads: model.workloads.map((w) => w.id),
    ...(external.length > 0 ? { external } : {}),
    registered,
    edges,
  };
}

export function formatGraph(g: Graph, format: 'table' | 'json' | 'dot' | 'mermaid'): string {
  if (format === 'json') return JSON.stringify(g, null, 2);
  // A registered workload is shown as `id [registered]`.
  const name = (w: string) => (g.registered[w] ? `${w} [registered]` : w);
  const label = (e: Edge) =>
    `${e.port} ${e.methods.join(',')} ${e.paths.join(',')}` +
    (e.except.length ? ` except ${e.except.join(',')}` : '') +
    (e.mtls === 'STRICT' ? '' : ` [${e.mtls}]`) +
    (e.conditional ? ' (conditional)' : '');
  if (format === 'dot') {
    const lines = ['digraph mesh {', '  rankdir=LR;', '  node [shape=box, style=rounded];'];
    const attrs = (w: string) => (g.registered[w] ? ` [label="${name(w)}", style="rounded,dashed"]` : '');
    for (const w of g.workloads) lines.push(`  "${w}"${attrs(w)};`);
    for (const h of g.external ?? []) lines.push(`  "${h}" [shape=ellipse, style=dashed];`);
    for (const e of g.edges)
      lines.push(`  "${e.from}" -> "${e.to}" [label="${label(e)}"${e.flags.length > 0 ? ', color=red' : ''}];`);
    lines.push('}');
    return lines.join('\n');
  }
  if (format === 'mermaid') {
    const id = (w: string) => w.replace(/[^A-Za-z0-9]/g, '_');
    const lines = ['flowchart LR'];
    for (const w of g.workloads) lines.push(`  ${id(w)}["${name(w)}"]`);
    for (const h of g.external ?? []) lines.push(`  ${id(h)}(["${h}"])`);
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
