/**
 * Stage: decode. Mesh `extensionProviders[].envoyExtAuthzHttp` / `envoyExtAuthzGrpc`: the external authorizers that
 * `action: CUSTOM` AuthorizationPolicies name, with every field of Istio's MeshConfig reference and Istio's
 * validation (plus what Envoy would NACK, so a mistake is a diagnostic here and not a rejected push). Whether
 * `service` names a ServiceEntry is checked in the model (model/ext-authz.ts).
 */
import type { Origin } from '../../diag/diagnostic.js';
import type { MapReader } from '../reader.js';
import type { ExtAuthzGrpcProvider, ExtAuthzHttpProvider, ExtAuthzRequestBody } from '../types.js';
import { DNS_LABEL, DNS_NAME } from './common.js';

/** Istio's default check timeout (MeshConfig: "default timeout: 600s"). */
export const EXT_AUTHZ_DEFAULT_TIMEOUT_MS = 600_000;

/** The codes of Envoy's envoy.type.v3.StatusCode enum (HttpStatus rejects anything else, and 0). */
const ENVOY_STATUS_CODES = new Set([
  100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403,
  404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500,
  501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

/** RFC 9110 token characters: what an HTTP header name may contain. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** `[<namespace>/]<host>`: the host must be a DNS name (a ServiceEntry host). */
function checkService(v: string): string | undefined {
  const parts = v.split('/');
  if (parts.length > 2) return `"${v}" is not [<namespace>/]<host>`;
  if (parts.length === 2 && !DNS_LABEL.test(parts[0])) return `"${parts[0]}" is not a namespace`;
  const host = parts[parts.length - 1];
  return DNS_NAME.test(host) && !host.startsWith('*') ? undefined : `"${host}" is not a host name`;
}

/** Istio's header patterns: exact, `prefix*` or `*suffix`; a lone `*` is refused, as Istio does. */
function checkHeaderPattern(v: string): string | undefined {
  if (v === '*') return 'a single "*" is not supported (Istio): use a prefix or suffix match';
  const core = v.startsWith('*') ? v.slice(1) : v.endsWith('*') ? v.slice(0, -1) : v;
  if (core.includes('*')) return `"${v}": "*" may only start or end a header pattern`;
  return HEADER_NAME.test(core) ? undefined : `"${v}" is not a header name`;
}

function headerPatterns(r: MapReader, key: string): string[] {
  const list = r.strList(key) ?? [];
  for (const [i, h] of list.entries()) {
    const problem = checkHeaderPattern(h.value);
    const path = `${r.sub(key)}[${i}]`;
    if (problem) r.ctx.diags.report('CH0204', `${path}: ${problem}`, { location: h.at, path, object: r.ctx.object });
  }
  return list.map((h) => h.value);
}

function requestBody(r: MapReader): ExtAuthzRequestBody | undefined {
  const b = r.map('includeRequestBodyInCheck');
  if (!b) return undefined;
  // Envoy's BufferSettings needs max_request_bytes > 0; Istio would pass 0 on and the proxy would NACK.
  const maxRequestBytes = b.int('maxRequestBytes', { required: true, min: 1, max: 2 ** 32 - 1 });
  const allowPartialMessage = b.bool('allowPartialMessage') ?? false;
  const packAsBytes = b.bool('packAsBytes') ?? false;
  b.done();
  return maxRequestBytes === undefined ? undefined : { maxRequestBytes, allowPartialMessage, packAsBytes };
}

function statusOnError(r: MapReader): number | undefined {
  const s = r.str('statusOnError');
  if (s === undefined) return undefined;
  const code = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!ENVOY_STATUS_CODES.has(code)) {
    r.report('CH0204', 'statusOnError', `"${s}" is not an HTTP status Envoy supports (e.g. "403", "503")`);
    return undefined;
  }
  return code;
}

/** The fields of both kinds; undefined when a required one is missing or invalid. */
function common(r: MapReader, name: string, at: Origin) {
  const service = r.str('service', { required: true });
  const problem = service !== undefined ? checkService(service) : undefined;
  if (problem) r.report('CH0204', 'service', problem);
  const port = r.int('port', { required: true, min: 1, max: 65535 });
  const timeoutMs = r.duration('timeout', { minMs: 1, maxMs: 24 * 3_600_000 }) ?? EXT_AUTHZ_DEFAULT_TIMEOUT_MS;
  const failOpen = r.bool('failOpen') ?? false;
  const status = statusOnError(r);
  const body = requestBody(r);
  if (service === undefined || problem || port === undefined) return undefined;
  return {
    name,
    service,
    port,
    timeoutMs,
    failOpen,
    ...(status !== undefined ? { statusOnError: status } : {}),
    ...(body ? { includeRequestBodyInCheck: body } : {}),
    at,
    serviceAt: r.loc('service'),
  };
}

export function decodeExtAuthzHttp(r: MapReader, name: string, at: Origin): ExtAuthzHttpProvider | undefined {
  const base = common(r, name, at);
  const pathPrefix = r.str('pathPrefix', { pattern: /^\/[^\s?#]*$/, patternHint: 'a path starting with "/"' });
  const include = headerPatterns(r, 'includeRequestHeadersInCheck');
  // Deprecated in Istio; still honoured there when the new field is not set.
  const legacy = headerPatterns(r, 'includeHeadersInCheck');
  const additional = r.strMap('includeAdditionalHeadersInCheck') ?? {};
  for (const [k, v] of Object.entries(additional)) {
    if (!HEADER_NAME.test(k)) r.report('CH0204', 'includeAdditionalHeadersInCheck', `"${k}" is not a header name`);
    if (/[\r\n\0]/.test(v)) r.report('CH0204', 'includeAdditionalHeadersInCheck', `"${k}": a value on one line`);
  }
  const toUpstream = headerPatterns(r, 'headersToUpstreamOnAllow');
  const toDownstreamAllow = headerPatterns(r, 'headersToDownstreamOnAllow');
  const toDownstreamDeny = headerPatterns(r, 'headersToDownstreamOnDeny');
  r.done();
  if (!base) return undefined;
  return {
    ...base,
    kind: 'extAuthzHttp',
    ...(pathPrefix !== undefined ? { pathPrefix } : {}),
    includeRequestHeadersInCheck: include.length > 0 ? include : legacy,
    includeAdditionalHeadersInCheck: Object.keys(additional)
      .sort()
      .map((k) => ({ name: k, value: additional[k] })),
    headersToUpstreamOnAllow: toUpstream,
    headersToDownstreamOnAllow: toDownstreamAllow,
    headersToDownstreamOnDeny: toDownstreamDeny,
  };
}

export function decodeExtAuthzGrpc(r: MapReader, name: string, at: Origin): ExtAuthzGrpcProvider | undefined {
  const base = common(r, name, at);
  r.done();
  return base ? { ...base, kind: 'extAuthzGrpc' } : undefined;
}
