/**
 * The CLI side of the admin API: one request to a running control plane, with the admin credential read from the
 * state directory (`--state-dir`, default .chancery, the same default as `serve`). The credential is only sent over
 * HTTPS or to a loopback address, never in clear text across a network.
 */
import path from 'node:path';
import { AdminCredential, CREDENTIAL_FILE } from '../admin/credential.js';
import { isLoopbackHost } from '../admin/hosts.js';
import { UsageError } from './args.js';

export const DEFAULT_ADMIN = 'http://127.0.0.1:15014';
export const DEFAULT_STATE_DIR = '.chancery';

export type AdminReply = { ok: true; status: number; body: unknown } | { ok: false; message: string };

export async function adminRequest(
  admin: string,
  pathname: string,
  o: { method?: string; stateDir: string },
): Promise<AdminReply> {
  let url: URL;
  try {
    url = new URL(pathname, admin);
  } catch {
    throw new UsageError(`--admin: "${admin}" is not a URL such as ${DEFAULT_ADMIN}`);
  }
  let credential: AdminCredential | undefined;
  try {
    credential = AdminCredential.read(o.stateDir);
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
  const safe = url.protocol === 'https:' || isLoopbackHost(url.hostname);
  const headers: Record<string, string> = credential && safe ? { authorization: credential.authorization } : {};
  const res = await fetch(url, { method: o.method ?? 'GET', headers }).catch((err: Error) => err);
  if (res instanceof Error) return { ok: false, message: `cannot reach the control plane at ${admin}: ${reason(res)}` };
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, message: `${url.pathname} answered ${res.status} with a body that is not JSON` };
  }
  if (res.status === 401 || res.status === 403 || res.status === 421) {
    const file = path.resolve(o.stateDir, CREDENTIAL_FILE);
    const where = !credential ? `no ${file}` : !safe ? 'it is only sent over https or to loopback' : `from ${file}`;
    const hint = res.status === 421 ? 'see serve --admin-allowed-host' : `admin credential: ${where}; see --state-dir`;
    const error = (body as { error?: string }).error;
    return { ok: false, message: `${url.pathname} refused (${res.status}: ${error}); ${hint}` };
  }
  return { ok: true, status: res.status, body };
}

const reason = (err: Error): string => {
  const cause = (err as { cause?: Error }).cause;
  return cause?.message ? `${err.message} (${cause.message})` : err.message;
};
