/**
 * Admin: how the admin port is configured, checked before anything binds; and its credential, opened only when the
 * port starts (after the control plane has opened its own state, which a first start still finds empty). Beyond
 * loopback the port must serve TLS (the operator's certificate files: the mesh CA issues SPIFFE ids, which browsers
 * and curl do not check, and its root rotates) and every read needs the credential too; on loopback reads are open
 * to local clients.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { AdminCredential } from './credential.js';
import { HostPolicy, isLoopbackHost } from './hosts.js';

export interface AdminOptions {
  /** Names accepted in `Host` besides loopback names and addresses and the bind address (--admin-allowed-host). */
  allowedHosts?: readonly string[];
  /** Serve HTTPS with these PEM files (--admin-tls-cert, --admin-tls-key); required beyond loopback. */
  tls?: { certFile: string; keyFile: string };
  /** Reads need the credential as well as actions; default: when bound beyond loopback. */
  requireCredentialForReads?: boolean;
}

export interface AdminConfig {
  hosts: HostPolicy;
  tls?: { cert: Buffer; key: Buffer };
  requireCredentialForReads: boolean;
}

export class AdminSetupError extends Error {}

/** Why the admin port may not bind to `host` as configured, or undefined. */
export function bindProblem(host: string, tls: boolean): string | undefined {
  if (isLoopbackHost(host) || tls) return undefined;
  return `the admin address ${host} is beyond loopback: it needs TLS (--admin-tls-cert and --admin-tls-key), ` +
    'and then every request needs the admin credential';
}

export function adminConfig(host: string, o: AdminOptions = {}): AdminConfig {
  const problem = bindProblem(host, o.tls !== undefined);
  if (problem) throw new AdminSetupError(problem);
  let hosts: HostPolicy;
  try {
    hosts = new HostPolicy(host, o.allowedHosts);
  } catch (err) {
    throw new AdminSetupError(`allowed hosts: ${(err as Error).message}`);
  }
  return {
    hosts,
    ...(o.tls ? { tls: readTls(o.tls) } : {}),
    requireCredentialForReads: o.requireCredentialForReads ?? !isLoopbackHost(host),
  };
}

/** The PEM files, checked now (a key that does not match its certificate fails here, not at listen time). */
function readTls(files: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const pems = { cert: readPem(files.certFile), key: readPem(files.keyFile) };
  wrap(() => createSecureContext(pems), `${files.certFile} with ${files.keyFile}`);
  return pems;
}

/** The admin credential of the state directory, created on first start. */
export function openCredential(stateDir: string): AdminCredential {
  return wrap(() => AdminCredential.open(stateDir));
}

function readPem(file: string): Buffer {
  return wrap(() => readFileSync(file), file);
}

function wrap<T>(fn: () => T, file?: string): T {
  try {
    return fn();
  } catch (err) {
    const msg = (err as Error).message;
    throw new AdminSetupError(file && !msg.includes(file) ? `${file}: ${msg}` : msg);
  }
}
