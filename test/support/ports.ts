/**
 * Free TCP ports for tests: listen on port 0, read the port the kernel chose, close. The port is only free at that
 * moment, so another process can still take it before the caller binds; to keep collisions unlikely, callers should
 * prefer a distinct 127.0.0.x address per workload (all of 127.0.0.0/8 is loopback on Linux) over sharing 127.0.0.1.
 */
import net from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (err) => reject(new Error(`cannot find a free port on ${host}: ${err.message}`)));
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
