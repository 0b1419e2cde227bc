/**
 * TLS for tests from outside the mesh: small certificate authorities, server and client certificates for host
 * names, credential directories as `chancery serve --credentials-dir` reads them, and an HTTPS request on a fresh
 * connection that reports the certificate the server presented (or the handshake error).
 */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { createTlsCertificate, exportPrivateKeyPem, generateKeyPair, toPem } from '../../src/ca/x509.js';

export interface Issued {
  certPem: string;
  keyPem: string;
  der: Uint8Array;
  key: KeyObject;
  /** Lower-case hex, as node's X509Certificate prints it. */
  serial: string;
}

const HOUR = 3_600_000;

function issue(dnsNames: string[], issuer?: Issued, ca?: boolean): Issued {
  const keys = generateKeyPair();
  const now = Date.now();
  const der = createTlsCertificate({
    keys,
    dnsNames,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + HOUR),
    ...(issuer ? { issuer: { der: issuer.der, key: issuer.key } } : {}),
    ...(ca !== undefined ? { ca } : {}),
  });
  const certPem = toPem(der, 'CERTIFICATE');
  const serial = new X509Certificate(der).serialNumber.toLowerCase();
  return { certPem, keyPem: exportPrivateKeyPem(keys.privateKey), der, key: keys.privateKey, serial };
}

/** A self-signed CA named `name`. */
export function testCa(name: string): Issued {
  return issue([name], undefined, true);
}

/** A leaf for host names (server and client auth), signed by `ca`. */
export function testLeaf(ca: Issued, dnsNames: string[]): Issued {
  return issue(dnsNames, ca, false);
}

/**
 * Writes `<dir>/<name>/tls.crt` (leaf then CA), `tls.key` and optionally `ca.crt`, each by rename (as a rotation
 * should be done: a reader never sees half a file). `only` writes just one of the files, for half-done rotations.
 */
export function writeCredential(
  dir: string,
  name: string,
  leaf: Issued,
  o: { chain?: Issued; clientCa?: Issued; only?: 'cert' | 'key' } = {},
): void {
  const d = path.join(dir, name);
  mkdirSync(d, { recursive: true });
  const put = (file: string, text: string): void => {
    writeFileSync(path.join(d, `.${file}.tmp`), text);
    renameSync(path.join(d, `.${file}.tmp`), path.join(d, file));
  };
  if (o.only !== 'key') put('tls.crt', leaf.certPem + (o.chain?.certPem ?? ''));
  if (o.only !== 'cert') put('tls.key', leaf.keyPem);
  if (o.clientCa && !o.only) put('ca.crt', o.clientCa.certPem);
}

export interface HttpsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Serial of the certificate the server presented. */
  serverSerial: string;
  json(): any;
}

export interface HttpsRequest {
  host: string;
  port: number;
  /** SNI and Host header. */
  servername: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  /** CA(s) the client trusts. */
  ca: string;
  client?: Issued;
  timeoutMs?: number;
}

/** One HTTPS request on a fresh connection; rejects on a handshake or connection error. */
export function httpsRequest(o: HttpsRequest): Promise<HttpsReply> {
  const target = `https://${o.servername}:${o.port}${o.path ?? '/'} (at ${o.host})`;
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: o.host,
        port: o.port,
        servername: o.servername,
        path: o.path ?? '/',
        method: o.method ?? 'GET',
        headers: { host: o.servername, ...o.headers },
        ca: o.ca,
        ...(o.client ? { cert: o.client.certPem, key: o.client.keyPem } : {}),
        agent: false,
      },
      (res) => {
        const peer = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
        const serverSerial = peer.serialNumber?.toLowerCase() ?? '';
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const body = Buffer.concat(chunks).toString();
          const status = res.statusCode ?? 0;
          resolve({ status, headers: res.headers, body, serverSerial, json: () => JSON.parse(body) });
        });
        res.on('error', reject);
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`${target}: timed out after ${o.timeoutMs ?? 5000}ms`));
    }, o.timeoutMs ?? 5000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`${target}: ${err.message}`), { code: (err as NodeJS.ErrnoException).code }));
    });
    req.end();
  });
}
