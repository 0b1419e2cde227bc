/**
 * Stage: ir (Envoy-free). What a sidecar's HTTP connection manager does to a request before any filter or route
 * sees it, for the Mesh's pathNormalization level (xds/resources/listener.ts sets the matching Envoy options).
 * explain uses it to see the request as the callee's RBAC does; test/e2e/authz-bypass.test.ts checks it against
 * real Envoy with every path trick we know.
 *
 * Envoy's order: decode `%2F` `%5C` (DECODE_AND_MERGE_SLASHES), then RFC 3986 normalisation (BASE: dot segments,
 * percent-decoding of unreserved characters, escaping of characters a path may not hold), then merging slashes.
 * The query is never touched.
 */
import type { MeshModel } from '../model/mesh-model.js';
import type { PathNormalization } from '../policy/types.js';
import { PATH_NORMALIZATIONS } from '../policy/types.js';
import type { RequestHandlingIR } from './types.js';

/** The Mesh's request normalisation, the same on every HTTP connection manager (sidecars' and gateways'). */
export function requestHandling(model: MeshModel): RequestHandlingIR {
  return { pathNormalization: model.mesh.pathNormalization, numTrustedProxies: model.mesh.numTrustedProxies };
}

export type NormalizedPath = { ok: true; path: string } | { ok: false; reason: string };

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** Characters the URL canonicaliser percent-encodes in a path. */
const ESCAPED = /[\x00-\x20"<>`{}\x7f-\uffff]/;

function atLeast(level: PathNormalization, min: PathNormalization): boolean {
  return PATH_NORMALIZATIONS.indexOf(level) >= PATH_NORMALIZATIONS.indexOf(min);
}

/** Percent-decodes unreserved characters and escapes what must be escaped (UTF-8), leaving other escapes. */
function canonicalChars(path: string): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '%' && /^[0-9A-Fa-f]{2}$/.test(path.slice(i + 1, i + 3))) {
      const decoded = String.fromCharCode(parseInt(path.slice(i + 1, i + 3), 16));
      if (UNRESERVED.test(decoded)) {
        out += decoded;
      } else {
        out += path.slice(i, i + 3);
      }
      i += 2;
    } else if (c === '\\') {
      out += '/';
    } else if (ESCAPED.test(c)) {
      out += [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
    } else {
      out += c;
    }
  }
  return out;
}

/** RFC 3986 section 5.2.4, with `..` above the root staying at the root. */
function removeDotSegments(path: string): string {
  const segments = path.split('/').slice(1);
  const out: string[] = [];
  segments.forEach((s, i) => {
    const last = i === segments.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(s);
    }
  });
  return `/${out.join('/')}`;
}

/** The `:path` (with query) as Envoy forwards it and as its filters and routes see it. */
export function normalizePath(raw: string, level: PathNormalization): NormalizedPath {
  const q = raw.indexOf('?');
  let path = q >= 0 ? raw.slice(0, q) : raw;
  const query = q >= 0 ? raw.slice(q) : '';
  if (path.includes('#')) return { ok: false, reason: 'a path with a fragment (#) is refused (400)' };
  if (!path.startsWith('/')) return { ok: true, path: raw };
  if (atLeast(level, 'DECODE_AND_MERGE_SLASHES')) path = path.replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
  if (atLeast(level, 'BASE')) path = removeDotSegments(canonicalChars(path));
  if (atLeast(level, 'MERGE_SLASHES')) path = path.replace(/\/{2,}/g, '/');
  return { ok: true, path: path + query };
}

/** `Host` as the connection manager keeps it: a trailing dot of the host name removed, the port kept. */
export function normalizeAuthority(authority: string): string {
  const m = /^(.*?)\.?(:\d+)?$/.exec(authority);
  return m ? `${m[1]}${m[2] ?? ''}` : authority;
}
