/**
 * Admin: the endpoints, each with its method and what it needs (see gate.ts). Handlers get a parsed, decoded
 * target; they answer every request and never throw for what a client sent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ControlPlane } from '../app/control-plane.js';
import { explain, formatExplanation, type ExplainRequest } from '../explain/explain.js';
import { buildGraph } from '../explain/graph.js';
import { DASHBOARD_HTML } from './dashboard.js';
import { proxyDocument, statusDocument } from './documents.js';
import type { Access } from './gate.js';

export interface RouteContext {
  cp: ControlPlane;
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  query: URLSearchParams;
  send(code: number, body: unknown): void;
}

export interface Route {
  method: 'GET' | 'POST';
  access: Access;
  /** A top-level navigation from another site may open it (static, holds no data). */
  navigable?: boolean;
  run(c: RouteContext): void | Promise<void>;
}

const GROUP_ID = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

const DASHBOARD_CSP =
  "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'";

const dashboard: Route = {
  method: 'GET',
  access: 'public',
  navigable: true,
  run: ({ res }) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': DASHBOARD_CSP });
    res.end(DASHBOARD_HTML);
  },
};

const ROUTES: Record<string, Route> = {
  '/': dashboard,
  '/dashboard': dashboard,
  '/healthz': { method: 'GET', access: 'public', run: ({ send }) => send(200, { ok: true }) },
  '/metrics': { method: 'GET', access: 'read', run: ({ cp, req, res }) => cp.telemetry.metricsHandler(req, res) },
  '/status': { method: 'GET', access: 'read', run: ({ cp, send }) => send(200, statusDocument(cp)) },
  '/api/graph': {
    method: 'GET',
    access: 'read',
    run: ({ cp, send }) => {
      const model = cp.current?.result.model;
      if (model) send(200, buildGraph(model));
      else send(503, { error: 'no accepted revision yet' });
    },
  },
  '/api/explain': { method: 'GET', access: 'read', run: runExplain },
  '/actions/rotate-root': {
    method: 'POST',
    access: 'action',
    run: async ({ cp, send }) => {
      const t0 = Date.now();
      await cp.rotateRoot().then(
        () => send(200, { ok: true, ms: Date.now() - t0, signer: cp.authority.signerInfo() }),
        (err: Error) => send(409, { ok: false, error: err.message }),
      );
    },
  },
  '/actions/rotate-xds-ca': {
    method: 'POST',
    access: 'action',
    run: async ({ cp, query, send }) => {
      const step = query.get('step');
      if (step !== 'begin' && step !== 'finish') return send(400, { ok: false, error: 'step must be begin or finish' });
      await cp.rotateXdsCa(step).then(
        (ca) => send(200, { ok: true, step, ca }),
        (err: Error) => send(409, { ok: false, error: err.message }),
      );
    },
  },
  '/actions/revoke-group': {
    method: 'POST',
    access: 'action',
    run: async ({ cp, query, send }) => {
      const group = query.get('group') ?? '';
      if (!GROUP_ID.test(group)) return send(400, { ok: false, error: 'group must be NAMESPACE/NAME' });
      await cp.revokeGroup(group).then(
        (r) => send(200, { ok: true, ...r }),
        (err: Error) => send(500, { ok: false, error: err.message }),
      );
    },
  },
  '/actions/sync': {
    method: 'POST',
    access: 'action',
    run: async ({ cp, send }) => {
      await cp.reload().then(
        (r) => send(200, r),
        (err: Error) => send(502, { error: `cannot read the policy source: ${err.message}` }),
      );
    },
  },
};

const proxy: Route = {
  method: 'GET',
  access: 'read',
  run: ({ cp, path, send }) => {
    const doc = proxyDocument(cp, path.slice('/proxies/'.length));
    if (doc) send(200, doc);
    else send(404, { error: 'no such proxy' });
  },
};

export const ENDPOINTS = [
  '/dashboard', '/healthz', '/metrics', '/status', '/proxies/<namespace>/<name>', '/api/graph', '/api/explain',
];

export function findRoute(path: string): Route | undefined {
  if (Object.hasOwn(ROUTES, path)) return ROUTES[path];
  return path.startsWith('/proxies/') && path.length > '/proxies/'.length ? proxy : undefined;
}

function runExplain({ cp, query, send }: RouteContext): void {
  const model = cp.current?.result.model;
  if (!model) return send(503, { error: 'no accepted revision yet' });
  const x = query.get('extAuthz');
  const q: ExplainRequest = {
    from: query.get('from') ?? '',
    to: query.get('to') ?? '',
    method: query.get('method') ?? 'GET',
    path: query.get('path') ?? '/',
    ...(x === 'allow' || x === 'deny' ? { extAuthz: x } : {}),
  };
  try {
    const e = explain(model, q);
    send(200, { explanation: e, text: formatExplanation(e, true) });
  } catch (err) {
    send(400, { error: (err as Error).message });
  }
}
