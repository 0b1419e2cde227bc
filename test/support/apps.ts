/**
 * Tiny upstream applications for end-to-end tests: each answers with JSON naming itself and echoing what it saw
 * (method, path, headers), so a test can tell which instance served a request and how it arrived. A behaviour
 * makes an app slow, failing, or failing every other request.
 */
import http from 'node:http';

export type Behaviour = { kind: 'ok' } | { kind: 'status'; code: number } | { kind: 'delay'; ms: number } | { kind: 'flaky'; code: number };

export interface App {
  name: string;
  requests: { method: string; path: string; headers: http.IncomingHttpHeaders }[];
  stop(): Promise<void>;
}

export function startApp(name: string, host: string, port: number, behaviour: Behaviour = { kind: 'ok' }): Promise<App> {
  const requests: App['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    const n = requests.length;
    req.resume();
    req.on('end', () => {
      const answer = (code: number) => {
        if (res.destroyed) return;
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ app: name, method: req.method, path: req.url, headers: req.headers }));
      };
      if (behaviour.kind === 'status') answer(behaviour.code);
      else if (behaviour.kind === 'flaky') answer(n % 2 === 1 ? behaviour.code : 200);
      else if (behaviour.kind === 'delay') setTimeout(() => answer(200), behaviour.ms);
      else answer(200);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`app ${name} cannot listen on ${host}:${port}: ${err.message}`)));
    server.listen(port, host, () =>
      resolve({
        name,
        requests,
        stop: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    );
  });
}
