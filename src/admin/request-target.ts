/**
 * Admin: the request target, parsed without exceptions. Only origin-form (`/path?query`) is served; the path and
 * every query parameter must be valid percent-encoded UTF-8, so `/proxies/%E0%A4%A` is a 400 and not a URIError.
 * The raw path may hold only RFC 3986 path characters (so `//[` is a 400 too); the query is read leniently, as
 * browsers leave `[`, `|` and the like unencoded there. Routes see the decoded path; no dot-segment resolution
 * (`/status/..` is simply not a route).
 */
export type RequestTarget = { ok: true; path: string; query: URLSearchParams } | { ok: false; error: string };

const PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;

const decode = (s: string): string | undefined => {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
};

export function parseTarget(target: string | undefined): RequestTarget {
  if (!target?.startsWith('/')) return { ok: false, error: 'the request target must be a path ("/...")' };
  const q = target.indexOf('?');
  const raw = q < 0 ? target : target.slice(0, q);
  if (!PATH.test(raw)) return { ok: false, error: 'the path holds characters a URL path may not' };
  const path = decode(raw);
  if (path === undefined) return { ok: false, error: 'the path is not valid percent-encoded UTF-8' };
  const query = q < 0 ? '' : target.slice(q + 1);
  if (query.split('&').some((p) => decode(p.replace(/\+/g, ' ')) === undefined)) {
    return { ok: false, error: 'the query is not valid percent-encoded UTF-8' };
  }
  return { ok: true, path, query: new URLSearchParams(query) };
}
