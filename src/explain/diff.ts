/**
 * Stage: explain (Envoy-free). The security-relevant difference between two revisions of the policy repository:
 * reachability edges added and removed, mTLS mode changes, routing changes (the sidecars' and each gateway's),
 * gateway servers (ports, hosts, TLS, credentials), certificate settings, and which proxies' Envoy configuration
 * changes — for a pull-request comment (Markdown) or tools (JSON).
 */
import type { CompileResult } from '../compiler.js';
import { canonicalJson, contentHash } from '../snapshot/canonical.js';
import { buildGraph, OUTSIDE, type Edge } from './graph.js';
import { mtlsModeFor } from '../model/security.js';
import { inboundPlans } from '../model/sidecars.js';

export interface MeshDiff {
  from: string;
  to: string;
  edgesAdded: Edge[];
  edgesRemoved: Edge[];
  /** Same caller and callee, different ports/methods/paths/mTLS/flags. */
  edgesChanged: { before: Edge; after: Edge }[];
  mtls: { workload: string; port: number; before?: string; after?: string }[];
  /** `gateway`: a VirtualService as bound to that gateway (`namespace/name`); without it, the sidecars' (`mesh`). */
  routing: {
    host: string;
    kind: 'VirtualService' | 'DestinationRule';
    change: Change;
    gateway?: string;
  }[];
  /** Gateway servers (listeners) added, removed or changed, with what changed (credentials by name). */
  gateways: { gateway: string; server: string; change: Change; details: string[] }[];
  certificates: { field: string; before: unknown; after: unknown }[];
  proxies: { changed: string[]; added: string[]; removed: string[] };
}

type Change = 'added' | 'removed' | 'changed';

// Edges from outside through one gateway port differ by the names their chains serve (PASSTHROUGH: one per SNI set).
const edgeKey = (e: Edge) => `${e.from} -> ${e.to}:${e.port}${e.from === OUTSIDE ? ` (${e.service})` : ''}`;
const edgeBody = (e: Edge) =>
  canonicalJson({ m: e.methods, p: e.paths, x: e.except, t: e.mtls, f: e.flags, c: e.conditional });

function mtlsTable(r: CompileResult): Map<string, string> {
  const out = new Map<string, string>();
  for (const w of r.model!.workloads)
    for (const p of inboundPlans(w, r.model!)) out.set(`${w.id}:${p.port}`, mtlsModeFor(r.model!, w, p.port));
  return out;
}

function proxyVersions(r: CompileResult): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, p] of r.proxies)
    out.set(id, contentHash(canonicalJson([...p.resources].map(([t, list]) => [t, list.map((x) => x.json)]))));
  return out;
}

export function diffRevisions(a: CompileResult, b: CompileResult): MeshDiff {
  const ga = new Map(buildGraph(a.model!).edges.map((e) => [edgeKey(e), e]));
  const gb = new Map(buildGraph(b.model!).edges.map((e) => [edgeKey(e), e]));
  const ma = mtlsTable(a);
  const mb = mtlsTable(b);
  const mtls: MeshDiff['mtls'] = [];
  for (const k of [...new Set([...ma.keys(), ...mb.keys()])].sort()) {
    if (ma.get(k) === mb.get(k)) continue;
    const i = k.lastIndexOf(':');
    mtls.push({
      workload: k.slice(0, i),
      port: Number(k.slice(i + 1)),
      ...(ma.has(k) ? { before: ma.get(k) } : {}),
      ...(mb.has(k) ? { after: mb.get(k) } : {}),
    });
  }
  const routing: MeshDiff['routing'] = [];
  for (const kind of ['VirtualService', 'DestinationRule'] as const) {
    const key = kind === 'VirtualService' ? 'virtualServices' : 'destinationRules';
    const ra: Map<string, { spec: unknown }> = a.model!.routing[key];
    const rb: Map<string, { spec: unknown }> = b.model!.routing[key];
    for (const host of [...new Set([...ra.keys(), ...rb.keys()])].sort()) {
      const x = ra.get(host);
      const y = rb.get(host);
      if (!x) routing.push({ host, kind, change: 'added' });
      else if (!y) routing.push({ host, kind, change: 'removed' });
      else if (canonicalJson(strip(x.spec)) !== canonicalJson(strip(y.spec)))
        routing.push({ host, kind, change: 'changed' });
    }
  }
  routing.push(...gatewayRouting(a, b));
  const certificates: MeshDiff['certificates'] = [];
  for (const field of [
    'trustDomain',
    'certificateTtlMs',
    'rotateAtFraction',
    'mtlsMode',
    'authorizationDefault',
  ] as const) {
    const before = a.model!.mesh[field];
    const after = b.model!.mesh[field];
    if (before !== after) certificates.push({ field, before, after });
  }
  const pa = proxyVersions(a);
  const pb = proxyVersions(b);
  return {
    from: a.revision,
    to: b.revision,
    edgesAdded: [...gb.entries()].filter(([k]) => !ga.has(k)).map(([, e]) => e),
    edgesRemoved: [...ga.entries()].filter(([k]) => !gb.has(k)).map(([, e]) => e),
    edgesChanged: [...gb.entries()]
      .filter(([k, e]) => ga.has(k) && edgeBody(ga.get(k)!) !== edgeBody(e))
      .map(([k, e]) => ({ before: ga.get(k)!, after: e })),
    mtls,
    routing,
    gateways: gatewayChanges(a, b),
    certificates,
    proxies: {
      changed: [...pb.keys()].filter((id) => pa.has(id) && pa.get(id) !== pb.get(id)).sort(),
      added: [...pb.keys()].filter((id) => !pa.has(id)).sort(),
      removed: [...pa.keys()].filter((id) => !pb.has(id)).sort(),
    },
  };
}

/** A key per item of `a` and `b`, compared: added, removed, or changed (with `details` of how). */
function compare<T>(
  a: Map<string, T>,
  b: Map<string, T>,
  details: (x: T, y: T) => string[],
): { key: string; change: Change; details: string[] }[] {
  const out: { key: string; change: Change; details: string[] }[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(key);
    const y = b.get(key);
    if (x === undefined) out.push({ key, change: 'added', details: [] });
    else if (y === undefined) out.push({ key, change: 'removed', details: [] });
    else {
      const d = details(x, y);
      if (d.length > 0) out.push({ key, change: 'changed', details: d });
    }
  }
  return out;
}

/** VirtualServices bound to gateways, per gateway and host (the sidecars' are in model.routing). */
function gatewayRouting(a: CompileResult, b: CompileResult): MeshDiff['routing'] {
  const table = (r: CompileResult) => {
    const out = new Map<string, string>();
    for (const [gateway, list] of r.model!.gateways.bound) {
      for (const vs of list)
        for (const h of vs.spec.hosts) out.set(`${gateway}|${h.value}`, canonicalJson(strip(vs.spec)));
    }
    return out;
  };
  return compare(table(a), table(b), (x, y) => (x === y ? [] : ['spec'])).map(({ key, change }) => {
    const [gateway, host] = key.split('|');
    return { host, kind: 'VirtualService' as const, change, gateway };
  });
}

/** Each Gateway server by gateway and port, with its Gateway's selector: what a listener of it is made of. */
function gatewayServers(r: CompileResult): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const g of r.model!.gateways.list) {
    for (const s of g.spec.servers) {
      const server = `port ${s.port.number} (${s.port.name})${s.bind ? ` on ${s.bind}` : ''}`;
      const body = strip(s) as Record<string, unknown>;
      out.set(`${g.namespace}/${g.name}|${server}`, { ...body, selector: g.spec.selector });
    }
  }
  return out;
}

/** What changed in a server: its credential by name, other TLS settings and fields by name. */
function serverDetails(x: Record<string, unknown>, y: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
    if (canonicalJson(x[k]) === canonicalJson(y[k])) continue;
    if (k !== 'tls') {
      out.push(k);
      continue;
    }
    const tx = (x.tls ?? {}) as Record<string, unknown>;
    const ty = (y.tls ?? {}) as Record<string, unknown>;
    for (const t of [...new Set([...Object.keys(tx), ...Object.keys(ty)])].sort()) {
      if (canonicalJson(tx[t]) === canonicalJson(ty[t])) continue;
      const shown = (v: unknown) => (v === undefined ? '(none)' : String(v));
      if (t === 'credentialName') out.push(`credential ${shown(tx[t])} → ${shown(ty[t])}`);
      else if (t === 'mode') out.push(`tls mode ${shown(tx[t])} → ${shown(ty[t])}`);
      else out.push(`tls.${t}`);
    }
  }
  return out;
}

function gatewayChanges(a: CompileResult, b: CompileResult): MeshDiff['gateways'] {
  return compare(gatewayServers(a), gatewayServers(b), serverDetails).map(({ key, change, details }) => {
    const [gateway, server] = key.split('|');
    return { gateway, server, change, details };
  });
}

/** Positions (`at`, `credentialAt`...) change with every edit of a file; they are not part of what a route does. */
function strip(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(strip);
  if (x && typeof x === 'object')
    return Object.fromEntries(
      Object.entries(x)
        .filter(([k]) => k !== 'at' && !k.endsWith('At'))
        .map(([k, v]) => [k, strip(v)]),
    );
  return x;
}

export function formatDiffMarkdown(d: MeshDiff): string {
  const short = (r: string) => (r.startsWith('dir:') ? r : r.slice(0, 12));
  const e = (x: Edge) =>
    `\`${x.from}\` → \`${x.to}\` port ${x.port}${x.from === OUTSIDE ? ` (${x.service})` : ''}: ` +
    `${x.methods.join(', ')} ${x.paths.join(', ')}${x.except.length ? ` except ${x.except.join(', ')}` : ''} ` +
    `(mTLS ${x.mtls})${x.flags.length ? ` ⚠ ${x.flags.join('; ')}` : ''}`;
  const out = [`## Mesh changes ${short(d.from)} → ${short(d.to)}`, ''];
  const section = (title: string, lines: string[]) => {
    if (lines.length === 0) return;
    out.push(`### ${title}`, '', ...lines.map((l) => `- ${l}`), '');
  };
  section('New allowed connections', d.edgesAdded.map(e));
  section('Removed connections', d.edgesRemoved.map(e));
  section(
    'Changed connections',
    d.edgesChanged.map(
      (c) => `${e(c.after)} (was: ${c.before.methods.join(', ')} ${c.before.paths.join(', ')}, mTLS ${c.before.mtls})`,
    ),
  );
  section(
    'mTLS',
    d.mtls.map((m) => `\`${m.workload}\` port ${m.port}: ${m.before ?? '(none)'} → ${m.after ?? '(none)'}`),
  );
  const at = (r: MeshDiff['routing'][number]) => (r.gateway ? ` at gateway \`${r.gateway}\`` : '');
  section(
    'Routing',
    d.routing.map((r) => `\`${r.host}\`${at(r)}: ${r.kind} ${r.change}`),
  );
  const how = (g: MeshDiff['gateways'][number]) => (g.details.length > 0 ? `: ${g.details.join('; ')}` : '');
  section(
    'Gateways',
    d.gateways.map((g) => `\`${g.gateway}\` ${g.server}: ${g.change}${how(g)}`),
  );
  section(
    'Mesh settings',
    d.certificates.map((c) => `${c.field}: ${String(c.before)} → ${String(c.after)}`),
  );
  section('Proxies whose configuration changes', [
    ...d.proxies.changed.map((p) => `\`${p}\``),
    ...d.proxies.added.map((p) => `\`${p}\` (new)`),
    ...d.proxies.removed.map((p) => `\`${p}\` (removed)`),
  ]);
  if (out.length === 2) out.push('No security-relevant or configuration change.');
  return out.join('\n').trimEnd() + '\n';
}
