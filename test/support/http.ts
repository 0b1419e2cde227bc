/**
 * HTTP helpers for tests: one request with a hard timeout (no keep-alive), and polling until a condition holds.
 */
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): any;
}

export function request(o: { host: string; port: number; path?: string; method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: o.host, port: o.port, path: o.path ?? '/', method: o.method ?? 'GET', headers: o.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
      });
      res.on('error', reject);
    });
    req.setTimeout(o.timeoutMs ?? 5000, () => req.destroy(new Error(`request to ${o.host}:${o.port}${o.path ?? '/'} timed out`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Polls `fn` until it returns a truthy value; throws with the last error after `timeoutMs`. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, o: { timeoutMs: number; intervalMs?: number; what: string }): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${o.timeoutMs} ms waiting for ${o.what}${last ? `; last error: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 100));
  }
}
