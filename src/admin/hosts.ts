/**
 * Admin: which addresses are loopback, and which names the admin port answers to. Checking `Host` is the defence
 * against DNS rebinding: a page on evil.test whose name is re-pointed at 127.0.0.1 is same-origin with the admin port
 * as far as the browser knows, but its requests still say `Host: evil.test`.
 */
import net from 'node:net';

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6'); // also covers ::ffff:127.x.y.z

/** True for `localhost` and loopback addresses (brackets allowed around IPv6). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  const family = net.isIP(h);
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);
const NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/** The name in a `Host` header, lowercased and without port or brackets; undefined when malformed. */
export function hostName(header: string): string | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(header);
  if (!m || (m[2] !== undefined && Number(m[2]) > 65535)) return undefined;
  const name = m[1].toLowerCase();
  if (name.startsWith('[')) return net.isIPv6(name.slice(1, -1)) ? name.slice(1, -1) : undefined;
  return net.isIPv4(name) || NAME.test(name) ? name : undefined;
}

/** Names accepted in `Host`: loopback names and addresses, the bind address (unless a wildcard), and `extra`. */
export class HostPolicy {
  private readonly names = new Set<string>();

  constructor(bindHost: string, extra: readonly string[] = []) {
    const bind = bindHost.toLowerCase().replace(/^\[(.*)\]$/, '$1');
    if (!WILDCARDS.has(bindHost)) this.names.add(bind);
    for (const e of extra) {
      const name = net.isIPv6(e) ? e.toLowerCase() : hostName(e);
      if (!name || e.includes(':') !== name.includes(':')) throw new Error(`"${e}" is not a host name or address`);
      this.names.add(name);
    }
  }

  allows(header: string | undefined): boolean {
    const name = header === undefined ? undefined : hostName(header);
    return name !== undefined && (isLoopbackHost(name) || this.names.has(name));
  }
}
