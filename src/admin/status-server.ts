/**
 * HTTP status API of the control plane (loopback by default):
 *   GET  /, /dashboard         the dashboard (service graph, proxies, revisions, explain form)
 *   GET  /api/graph            who may talk to whom (JSON); GET /api/explain?from=&to=&method=&path=
 *   GET  /healthz              liveness
 *   GET  /metrics              Prometheus metrics of the control plane (OpenTelemetry)
 *   GET  /status               revisions (accepted/rejected with diagnostics), every proxy's per-type state, certificates
 *   GET  /proxies/<id>         one proxy's status and the resources (proto3 JSON, keys redacted) in its snapshot
 *   POST /actions/rotate-root  rotate the generated root CA without restarts (answers when done)
 *   POST /actions/sync         look for a new revision now (Git sources are otherwise polled)
 */
import { createServer, type Server } from 'node:http';
import type { ControlPlane } from '../app/control-plane.js';
import { explain, formatExplanation } from '../explain/explain.js';
import { buildGraph } from '../explain/graph.js';
import { redactSecrets } from '../xds/resources/secret.js';
import { DASHBOARD_HTML } from './dashboard.js';
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
    revisions: [...cp.revisions].reverse().map((r) => (r.status === 'accepted' ? { ...r, convergence: cp.convergenceOf(r.revision) } : r)),
    proxies: cp.ads.registry.all().map((p) => ({ ...p, identity: identities.get(p.id) ?? null, upToDate: p.connected && p.revision === current })),
    certificates: { signer: cp.authority?.signerInfo(), workloads: cp.svids?.status() ?? [] },
  };
}


export function proxyDocument(cp: ControlPlane, id: string): object | undefined {
  const snap = cp.ads.snapshots.get(id);
  const status = cp.ads.registry.get(id);
  if (!snap && !status) return undefined;
  const resources: Record<string, object[]> = {};
  for (const [typeUrl, t] of snap?.types ?? []) {
    resources[SHORT_NAME[typeUrl as TypeUrl]] = [...t.resources.values()].map((r) => ({ name: r.name, version: r.version, origins: r.origins, resource: redactSecrets(r.json) }));
  }
  return { id, revision: snap?.revision ?? null, version: snap?.version ?? null, status: status ?? null, resources };
}

export function startStatusServer(cp: ControlPlane, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://status');
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body, null, 2));
    };
    if (req.method === 'POST' && url.pathname === '/actions/rotate-root') {
      const t0 = Date.now();
      cp.rotateRoot().then(
        () => send(200, { ok: true, ms: Date.now() - t0, signer: cp.authority.signerInfo() }),
        (err: Error) => send(409, { ok: false, error: err.message }),
      );
      return;
    }
    if (req.method === 'POST' && url.pathname === '/actions/sync') {
      cp.reload().then(
        (r) => send(200, r),
        (err: Error) => send(502, { error: `cannot read the policy source: ${err.message}` }),
      );
      return;
    }
    if (req.method !== 'GET') return send(405, { error: 'use GET (POST only for /actions/*)' });
    if (url.pathname === '/healthz') return send(200, { ok: true });
    if (url.pathname === '/metrics') return cp.telemetry.metricsHandler(req, res);
    if (url.pathname === '/status') return send(200, statusDocument(cp));
    if (url.pathname === '/' || url.pathname === '/dashboard') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'" });
      return res.end(DASHBOARD_HTML);
    }
    const model = cp.current?.result.model;
    if (url.pathname === '/api/graph') return model ? send(200, buildGraph(model)) : send(503, { error: 'no accepted revision yet' });
    if (url.pathname === '/api/explain') {
      if (!model) return send(503, { error: 'no accepted revision yet' });
      const q = url.searchParams;
      try {
        const x = q.get('extAuthz');
        const e = explain(model, {
          from: q.get('from') ?? '',
          to: q.get('to') ?? '',
          method: q.get('method') ?? 'GET',
          path: q.get('path') ?? '/',
          ...(x === 'allow' || x === 'deny' ? { extAuthz: x } : {}),
        });
        return send(200, { explanation: e, text: formatExplanation(e, true) });
      } catch (err) {
        return send(400, { error: (err as Error).message });
      }
    }
    if (url.pathname.startsWith('/proxies/')) {
      const doc = proxyDocument(cp, decodeURIComponent(url.pathname.slice('/proxies/'.length)));
      return doc ? send(200, doc) : send(404, { error: 'no such proxy' });
    }
    send(404, { error: 'not found', endpoints: ['/dashboard', '/healthz', '/metrics', '/status', '/proxies/<namespace>/<name>', '/api/graph', '/api/explain'] });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
