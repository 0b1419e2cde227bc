/**
 * Admin: the JSON documents of the status API, built from the control plane's state (read-only).
 *   /status         revisions (accepted/rejected with diagnostics), every proxy's per-type state, certificates
 *   /proxies/<id>   one proxy's status and the resources (proto3 JSON, keys redacted) in its snapshot
 */
import type { ControlPlane } from '../app/control-plane.js';
import { redactSecrets } from '../xds/resources/secret.js';
import { SHORT_NAME, type TypeUrl } from '../xds/type-urls.js';

export function statusDocument(cp: ControlPlane): object {
  const current = cp.current?.result.revision;
  const identities = new Map((cp.current?.result.model?.workloads ?? []).map((w) => [w.id, w.identity]));
  return {
    controlPlane: { startedAt: cp.startedAt, xdsPort: cp.xdsPort, source: cp.sourceName() },
    revision: {
      current: current ?? null,
      lastRejected: [...cp.revisions].reverse().find((r) => r.status === 'rejected') ?? null,
    },
    revisions: [...cp.revisions]
      .reverse()
      .map((r) => (r.status === 'accepted' ? { ...r, convergence: cp.convergenceOf(r.revision) } : r)),
    ...(cp.replica ? { replica: { name: cp.replica.name, storeReachable: cp.replica.available } } : {}),
    proxies: proxyStatuses(cp).map((p) => ({
      ...p,
      identity: identities.get(p.id) ?? null,
      upToDate: p.connected && p.revision === current,
      registered: registeredOf(cp, p.id),
    })),
    registrations: registrationsOf(cp),
    certificates: {
      signer: cp.authority?.signerInfo(),
      workloads: cp.svids?.status() ?? [],
      xds: { server: cp.serving?.status() ?? null, ca: cp.xdsCa?.status() ?? null },
      // Gateway credentials from --credentials-dir: what is on disk now and which version is served (no key).
      gateways: cp.credentials?.status() ?? [],
    },
  };
}

/**
 * Every proxy this replica serves and, with replicas, those the others serve (from the store): each with the
 * replica serving it. A proxy connected elsewhere wins over this replica's record of its disconnection.
 */
function proxyStatuses(cp: ControlPlane): { id: string; connected: boolean; revision?: string }[] {
  const local = cp.ads.registry.all();
  if (!cp.replica) return local;
  const byId = new Map<string, { id: string; connected: boolean; revision?: string; replica: string }>();
  for (const p of local) byId.set(p.id, { ...p, replica: cp.replica.name });
  for (const [id, p] of cp.replica.remoteProxies()) {
    const mine = byId.get(id);
    if (!mine || (!mine.connected && p.connected)) byId.set(id, p);
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A registered workload's group and registration, or null for a committed one. */
function registeredOf(cp: ControlPlane, id: string): object | null {
  const i = cp.registrations?.get(id);
  if (!i) return null;
  const leaving = i.disconnectedAt ? { leavingSince: i.disconnectedAt } : {};
  return { group: i.group, address: i.address, registeredAt: i.registeredAt, ...leaving };
}

/** Each WorkloadGroup of the current revision with its instances, and the grace period. */
function registrationsOf(cp: ControlPlane): object {
  const instances = cp.registrations?.all() ?? [];
  const groups = (cp.current?.result.model?.groups ?? []).map((g) => ({
    id: g.id,
    maxInstances: g.maxInstances,
    tokenGeneration: cp.groupGenerations.generation(g.id),
    instances: instances
      .filter((i) => i.group === g.id)
      .map((i) => ({
        id: i.id,
        address: i.address,
        connected: i.connected,
        ...(cp.replica ? { replica: i.replica ?? cp.replica.name } : {}),
      })),
  }));
  return { graceMs: cp.registrations?.graceMs ?? null, groups };
}

export function proxyDocument(cp: ControlPlane, id: string): object | undefined {
  const snap = cp.ads.snapshots.get(id);
  const here = cp.ads.registry.get(id);
  const there = cp.replica?.remoteProxies().get(id);
  // With replicas: the serving replica's status, wherever the proxy is connected.
  const status =
    here?.connected || !there ? (here && cp.replica ? { ...here, replica: cp.replica.name } : here) : there;
  if (!snap && !status) return undefined;
  const resources: Record<string, object[]> = {};
  for (const [typeUrl, t] of snap?.types ?? []) {
    resources[SHORT_NAME[typeUrl as TypeUrl]] = [...t.resources.values()].map((r) => ({
      name: r.name,
      version: r.version,
      origins: r.origins,
      resource: redactSecrets(r.json),
    }));
  }
  const registered = registeredOf(cp, id);
  const revision = snap?.revision ?? null;
  return { id, revision, version: snap?.version ?? null, status: status ?? null, registered, resources };
}
