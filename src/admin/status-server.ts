/**
 * The admin port: the HTTP(S) status API and dashboard of the control plane (loopback by default).
 *   GET  /, /dashboard         the dashboard (service graph, proxies, revisions, explain form)
 *   GET  /api/graph            who may talk to whom (JSON); GET /api/explain?from=&to=&method=&path=
 *   GET  /healthz              liveness
 *   GET  /metrics              Prometheus metrics of the control plane (OpenTelemetry)
 *   GET  /status, /proxies/<id>  see documents.ts
 *   POST /actions/rotate-root  rotate the generated root CA without restarts (answers when done)
 *   POST /actions/sync         look for a new revision now (Git sources are otherwise polled)
 *   POST /actions/rotate-xds-ca?step=begin|finish  rotate the CA that bootstraps trust (see ca/xds-ca.ts)
 *   POST /actions/revoke-group?group=NS/NAME  revoke a WorkloadGroup's tokens, remove its registered instances
 * Every request is answered, and nothing a client sends can throw out of the handler: a bad target is a 400, a
 * foreign Host a 421, a cross-origin request a 403, a missing credential a 401 (gate.ts), a big body a 413.
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { ControlPlane } from '../app/control-plane.js';
import { silentLogger, type Logger } from '../app/logger.js';
import { drainBody } from './body.js';
import { checkCredential, checkRequester, type Refusal } from './gate.js';
import { parseTarget } from './request-target.js';
import { ENDPOINTS, findRoute } from './routes.js';
import type { AdminCredential } from './credential.js';
import { adminConfig, openCredential, type AdminConfig, type AdminOptions } from './setup.js';

export { proxyDocument, statusDocument } from './documents.js';

const HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
/** Slow or endless requests are cut off; actions may still take long to answer. */
const LIMITS = { maxHeaderSize: 16 * 1024, headersTimeout: 10_000, requestTimeout: 30_000 };

export interface StatusServerOptions extends AdminOptions {
  /** Already checked (serve does it before anything binds); made from the other options when absent. */
  config?: AdminConfig;
  log?: Logger;
}

interface Admin extends AdminConfig {
  credential: AdminCredential;
  scheme: 'http' | 'https';
}

export async function startStatusServer(
  cp: ControlPlane,
  host: string,
  port: number,
  o: StatusServerOptions = {},
): Promise<Server> {
  const config = o.config ?? adminConfig(host, o);
  const credential = openCredential(cp.settings.stateDir);
  const admin: Admin = { ...config, credential, scheme: config.tls ? 'https' : 'http' };
  const log = o.log ?? silentLogger;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    handle(cp, admin, req, res).catch((err: Error) => {
      log.error('admin request failed', { method: req.method, error: err.stack ?? err.message });
      if (!res.headersSent) refuse(req, res, { status: 500, error: 'internal error' });
      else res.destroy();
    });
  };
  const server: Server = admin.tls
    ? https.createServer({ ...LIMITS, cert: admin.tls.cert, key: admin.tls.key }, handler)
    : http.createServer(LIMITS, handler);
  // Without a listener Node drops CONNECT without an answer.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

async function handle(cp: ControlPlane, admin: Admin, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = parseTarget(req.url);
  if (!target.ok) return refuse(req, res, { status: 400, error: target.error });
  const route = findRoute(target.path);
  const early = checkRequester(req, admin.hosts, admin.scheme, route?.navigable === true);
  if (early) return refuse(req, res, early);
  if (!route) return refuse(req, res, { status: 404, error: 'not found', endpoints: ENDPOINTS });
  const methods = route.method === 'GET' ? ['GET', 'HEAD'] : ['POST'];
  if (!methods.includes(req.method ?? '')) {
    const headers = { allow: methods.join(', ') };
    return refuse(req, res, { status: 405, error: `use ${methods.join(' or ')}`, headers });
  }
  const denied = checkCredential(req, admin.credential, route.access, admin.requireCredentialForReads);
  if (denied) return refuse(req, res, denied);
  const body = await drainBody(req);
  if (body === 'aborted') return void res.destroy();
  if (body === 'too-large') return refuse(req, res, { status: 413, error: 'request bodies are not read past 64 KiB' });
  const send = (code: number, doc: unknown): void => {
    res.writeHead(code, { 'content-type': 'application/json', ...HEADERS });
    res.end(JSON.stringify(doc, null, 2));
  };
  await route.run({ cp, req, res, path: target.path, query: target.query, send });
}

/**
 * Answers with an error and closes the connection. A body the client is still sending is not read on: the socket
 * is destroyed shortly after the answer (at once would reset the connection before the client reads it).
 */
function refuse(req: IncomingMessage, res: ServerResponse, r: Refusal): void {
  const { status, error, headers, ...rest } = r;
  res.writeHead(status, { 'content-type': 'application/json', connection: 'close', ...HEADERS, ...headers });
  res.end(JSON.stringify({ error, ...rest }));
  if (!req.complete) res.once('finish', () => setTimeout(() => req.socket.destroy(), 1000).unref());
}
