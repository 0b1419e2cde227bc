/**
 * Admin: no endpoint takes a request body, but clients may send one. It is read and discarded up to a limit, so an
 * action runs only on a complete request; past the limit the request is refused (413) without reading on.
 */
import type { IncomingMessage } from 'node:http';

export const BODY_LIMIT = 64 * 1024;

export function drainBody(req: IncomingMessage, limit = BODY_LIMIT): Promise<'ok' | 'too-large' | 'aborted'> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.resolve('too-large');
  return new Promise((resolve) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limit) {
        req.pause();
        resolve('too-large');
      }
    });
    req.once('end', () => resolve('ok'));
    req.once('error', () => resolve('aborted'));
    req.once('close', () => resolve(req.complete ? 'ok' : 'aborted'));
  });
}
