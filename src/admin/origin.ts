/**
 * Admin: refuses requests a browser sends on behalf of another origin. Browsers label every request with
 * `Sec-Fetch-Site` (and non-GET ones with `Origin`); a page elsewhere — another site, or another port of the same
 * loopback address, which is "same-site" — must not drive the admin API, even with a no-cors "simple" POST whose
 * answer it cannot read. Clients that are not browsers (the CLI, curl, Prometheus) send neither header.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Why the request counts as cross-origin, or undefined. `ownOrigin` is `scheme://<Host header>`. A top-level
 * navigation from elsewhere is let through where `navigable` (the dashboard page: static, it holds no data).
 */
export function crossOriginReason(
  headers: IncomingHttpHeaders,
  ownOrigin: string,
  navigable: boolean,
): string | undefined {
  const site = headers['sec-fetch-site'];
  const navigation = headers['sec-fetch-mode'] === 'navigate';
  if (site !== undefined && site !== 'same-origin' && site !== 'none' && !(navigable && navigation)) {
    return `Sec-Fetch-Site: ${site}`;
  }
  const origin = headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== ownOrigin.toLowerCase()) return `Origin: ${origin}`;
  return undefined;
}
