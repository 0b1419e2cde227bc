/**
 * Raw HTTP/1.1 over a TCP socket, for requests no well-behaved client would send (malformed targets, odd methods,
 * duplicate or missing Host, huge headers, bodies that never end). Resolves when the server closes the connection,
 * with the status of the first response (0 when the server answered nothing).
 */
import net from 'node:net';

export interface RawReply {
  status: number;
  text: string;
}

export interface RawRequest {
  host: string;
  port: number;
  /** Request line and headers, without the blank line that ends them. */
  head: string;
  /** A body sent after the head; `stream` repeats a chunk until `total` bytes or until the server answers. */
  body?: string | Stream;
  timeoutMs?: number;
}

export function rawHttp(o: RawRequest): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(o.port, o.host);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      const line = o.head.split('\r\n')[0];
      reject(new Error(`${line}: no answer after ${o.timeoutMs ?? 5000}ms (got ${text.length} bytes)`));
    }, o.timeoutMs ?? 5000);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined); // a reset after the answer is expected when a body is refused
    socket.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    });
    socket.on('connect', () => {
      socket.write(`${o.head}\r\n\r\n`);
      if (typeof o.body === 'string') socket.write(o.body);
      else if (o.body) void stream(socket, o.body, () => text.length > 0);
    });
  });
}

type Stream = { chunk: Buffer; total: number };

async function stream(socket: net.Socket, body: Stream, answered: () => boolean): Promise<void> {
  for (let sent = 0; sent < body.total && !socket.destroyed && !answered(); sent += body.chunk.length) {
    if (!socket.write(body.chunk)) {
      await new Promise<void>((r) => {
        socket.once('drain', r);
        socket.once('close', r);
      });
    }
  }
}
