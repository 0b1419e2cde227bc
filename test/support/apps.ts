/**
 * Tiny upstream applications for end-to-end tests. Each answers with JSON naming itself and echoing what it saw
 * ({ app, method, path, headers, body }), so a test can tell which instance served a request and how it arrived.
 * A behaviour, changeable at runtime, makes an app fail, slow, or fail every Nth request; a request header
 * `x-test-delay-ms: N` delays that one answer by N ms more.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behaviour =
  | { kind: 'ok' }
  | { kind: 'status'; code: number }
  | { kind: 'delay'; ms: number }
  /** Requests 1, 1+N, 1+2N… (counted since start, reset() or setBehaviour()) fail with `code`: the first attempt always fails, a retry then succeeds. Defaults: every 2, code 503. */
  | { kind: 'flaky'; every?: number; code?: number };

export interface SeenRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface App {
  name: string;
  /** http://host:port */
  url: string;
  host: string;
  port: number;
  requests: SeenRequest[];
  count(): number;
  /** Forgets the requests seen (and restarts a flaky app's count). */
  reset(): void;
  setBehaviour(b: Behaviour): void;
  stop(): Promise<void>;
}

export interface AppOptions {
  name: string;
  host: string;
  port: number;
  behaviour?: Behaviour;
}

export function startApp(opts: AppOptions): Promise<App>;
/** @deprecated positional form kept for existing tests; use startApp({ name, host, port, behaviour }). */
export function startApp(name: string, host: string, port: number, behaviour?: Behaviour): Promise<App>;
export function startApp(a: AppOptions | string, host?: string, port?: number, behaviour?: Behaviour): Promise<App> {
  return listen(typeof a === 'string' ? { name: a, host: host!, port: port!, behaviour } : a);
}

function listen(o: AppOptions): Promise<App> {
  const { name } = o;
  let behaviour: Behaviour = o.behaviour ?? { kind: 'ok' };
  let flakyCount = 0;
  const requests: SeenRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      requests.push(seen);
      let code = 200;
      let delay = Number(req.headers['x-test-delay-ms'] ?? 0) || 0;
      const b = behaviour;
      if (b.kind === 'status') code = b.code;
      else if (b.kind === 'delay') delay += b.ms;
      else if (b.kind === 'flaky' && flakyCount++ % (b.every ?? 2) === 0) code = b.code ?? 503;
      const answer = (): void => {
        if (res.destroyed) return;
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ app: name, ...seen }));
      };
      if (delay <= 0) return answer();
      const t = setTimeout(() => {
        timers.delete(t);
        answer();
      }, delay);
      timers.add(t);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`app ${name} cannot listen on ${o.host}:${o.port}: ${err.message}`)));
    server.listen(o.port, o.host, () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        name,
        host: o.host,
        port,
        url: `http://${o.host}:${port}`,
        requests,
        count: () => requests.length,
        reset: () => {
          requests.length = 0;
          flakyCount = 0;
        },
        setBehaviour: (b) => {
          behaviour = b;
          flakyCount = 0;
        },
        stop: () =>
          new Promise<void>((r) => {
            for (const t of timers) clearTimeout(t);
            timers.clear();
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
