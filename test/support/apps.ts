/**
 * Tiny upstream applications for end-to-end tests: each answers with JSON naming itself and echoing what it saw
 * (method, path, headers), so a test can tell which instance served a request and how it arrived.
 */
import http from 'node:http';

export interface App {
  name: string;
  requests: { method: string; path: string; headers: http.IncomingHttpHeaders }[];
  stop(): Promise<void>;
}

export function startApp(name: string, host: string, port: number): Promise<App> {
  const requests: App['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ app: name, method: req.method, path: req.url, headers: req.headers }));
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
