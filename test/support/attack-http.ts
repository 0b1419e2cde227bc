/**
 * Requests exactly as an attacker writes them: the request target byte for byte (no client-side normalisation,
 * like `curl --path-as-is`), over HTTP/1.1 or HTTP/2, in plaintext or over TLS with a client certificate. Each
 * request has a hard deadline and its own connection.
 */
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';

export interface RawReply {
  status: number;
  body: string;
}

export interface RawTarget {
  host: string;
  port: number;
  /** mTLS: the client certificate chain, key and the CA bundle to verify the server. */
  tls?: { cert: string; key: string; ca: string };
}

export interface RawRequest {
  path: string;
  authority: string;
  method?: string;
  /** A list sends the header once per value (separate header lines, or HTTP/2 header fields). */
  headers?: Record<string, string | string[]>;
  timeoutMs?: number;
}

/** HTTP/1.1, origin form: `GET <path> HTTP/1.1` with the given Host. */
export function rawHttp1(t: RawTarget, r: RawRequest): Promise<RawReply> {
  const lines = [`${r.method ?? 'GET'} ${r.path} HTTP/1.1`, `Host: ${r.authority}`, 'Connection: close'];
  for (const [k, vs] of Object.entries(r.headers ?? {})) for (const v of [vs].flat()) lines.push(`${k}: ${v}`);
  const wire = `${lines.join('\r\n')}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const sock = t.tls
      ? tls.connect({
          host: t.host,
          port: t.port,
          ...t.tls,
          servername: 'outbound',
          checkServerIdentity: () => undefined,
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect({ host: t.host, port: t.port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${r.path}: timed out`));
    }, r.timeoutMs ?? 5000);
    sock.once(t.tls ? 'secureConnect' : 'connect', () => sock.write(wire));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${r.path}: ${err.message}`));
    });
    sock.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (!m) return reject(new Error(`${r.path}: no HTTP response (${JSON.stringify(text.slice(0, 200))})`));
      resolve({ status: Number(m[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
  });
}

/** HTTP/2 (h2c prior knowledge, or h2 over TLS) with the given `:path` and `:authority`. */
export function rawHttp2(t: RawTarget, r: RawRequest): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const url = `${t.tls ? 'https' : 'http'}://${t.host}:${t.port}`;
    const opts = t.tls ? { ...t.tls, servername: 'outbound', checkServerIdentity: () => undefined } : {};
    const client = http2.connect(url, opts);
    const timer = setTimeout(() => {
      client.destroy();
      reject(new Error(`${r.path}: timed out`));
    }, r.timeoutMs ?? 5000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      client.destroy();
      reject(new Error(`${r.path}: ${err.message}`));
    };
    client.on('error', fail);
    const req = client.request({
      ':method': r.method ?? 'GET',
      ':path': r.path,
      ':authority': r.authority,
      ...r.headers,
    });
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', fail);
    req.on('end', () => {
      clearTimeout(timer);
      client.close();
      resolve({ status, body: Buffer.concat(chunks).toString() });
    });
    req.end();
  });
}
