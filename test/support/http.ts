/**
 * HTTP helpers for tests: one request on a fresh connection (no keep-alive, so nothing lingers between tests) with a
 * hard timeout, and `waitFor`, which polls until a condition holds.
 */
import http from 'node:http';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): any;
}

export interface RequestOptions {
  host: string;
  port: number;
  /** A path, or an absolute URL to send a proxy-style request. */
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

export function request(o: RequestOptions): Promise<Reply> {
  const method = o.method ?? 'GET';
  const target = `${method} http://${o.host}:${o.port}${o.path ?? '/'}`;
  const timeoutMs = o.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const fail = (err: Error & { code?: string }): void => {
      const e = new Error(`${target}: ${err.message}`, { cause: err }) as Error & { code?: string };
      e.code = err.code;
      reject(e);
    };
    const req = http.request({ host: o.host, port: o.port, path: o.path ?? '/', method, headers: o.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks).toString();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json: () => {
            try {
              return JSON.parse(body);
            } catch {
              throw new Error(`${target} answered ${res.statusCode} with a body that is not JSON: ${body.slice(0, 500)}`);
            }
          },
        });
      });
      res.on('error', fail);
    });
    // A hard deadline for the whole exchange, not just socket inactivity.
    const timer = setTimeout(() => {
      fail(Object.assign(new Error(`timed out after ${timeoutMs}ms`), { code: 'ETIMEDOUT' }));
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    req.end(o.body);
  });
}

/**
 * Polls `fn` until it returns a truthy value and returns that value. Errors thrown by `fn` count as "not yet"; on
 * timeout the last one is included in the message.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  o: { timeoutMs: number; intervalMs?: number; what: string },
): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const why = last === undefined ? '' : `; last error: ${last instanceof Error ? last.message : String(last)}`;
      throw new Error(`timed out after ${o.timeoutMs}ms waiting for ${o.what}${why}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(o.intervalMs ?? 100, Math.max(0, deadline - Date.now()))));
  }
}
