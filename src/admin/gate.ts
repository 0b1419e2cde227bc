/**
 * Admin: who may ask. Every request passes `checkRequester` (an allowed `Host`, not sent by a page on another
 * origin) before routing, then `checkCredential` for what its route does: actions always need the admin credential
 * as `Authorization: Bearer`, which a cross-origin form or no-cors POST cannot carry; reads need it when the port is
 * exposed beyond loopback; the dashboard page and /healthz never do (they hold no data).
 */
import type { IncomingMessage } from 'node:http';
import type { AdminCredential } from './credential.js';
import { hostName, type HostPolicy } from './hosts.js';
import { crossOriginReason } from './origin.js';

export type Access = 'public' | 'read' | 'action';

export interface Refusal {
  status: number;
  error: string;
  headers?: Record<string, string>;
  /** For a 404: what there is. */
  endpoints?: readonly string[];
}

export function checkRequester(
  req: IncomingMessage,
  allowed: HostPolicy,
  scheme: string,
  navigable: boolean,
): Refusal | undefined {
  const hosts = req.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'host').length;
  const host = req.headers.host;
  if (hosts !== 1 || host === undefined) return { status: 400, error: 'exactly one Host header is required' };
  if (hostName(host) === undefined) return { status: 400, error: 'the Host header is malformed' };
  if (!allowed.allows(host)) {
    return { status: 421, error: `Host "${host}" is not a name of this admin port (see --admin-allowed-host)` };
  }
  const why = crossOriginReason(req.headers, `${scheme}://${host}`, navigable);
  return why ? { status: 403, error: `cross-origin requests are refused (${why})` } : undefined;
}

/** `reads`: whether reads need the credential too (an admin port beyond loopback). */
export function checkCredential(req: IncomingMessage, credential: AdminCredential, access: Access, reads: boolean) {
  const needed = access === 'action' || (access === 'read' && reads);
  if (!needed || credential.matches(req.headers.authorization)) return undefined;
  return {
    status: 401,
    error: 'this needs the admin credential (Authorization: Bearer; admin.token in the state directory)',
    headers: { 'www-authenticate': 'Bearer realm="chancery-admin"' },
  };
}
