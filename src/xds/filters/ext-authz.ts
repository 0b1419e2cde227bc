/**
 * Stage: xds. AuthorizationPolicy `action: CUSTOM` -> Envoy's ext_authz, as Istio builds it: an RBAC filter whose
 * shadow rules are the CUSTOM rules (it enforces nothing; a rule that matches leaves its name in the dynamic
 * metadata key `istio_ext_authz_shadow_effective_policy_id`), then the ext_authz filter with
 * `filter_enabled_metadata` on that key, so the provider is asked only about the requests the CUSTOM rules select.
 * Both come before the DENY / ALLOW RBAC filters (the HTTP filter table in index.ts), so a request the provider
 * denies is denied whatever ALLOW says, and one it allows still meets DENY and ALLOW.
 *
 * The shadow rules are named `<namespace>/<name>/rules[<i>]` like every RBAC policy; since Envoy writes the key only
 * when a rule matched, its presence is the condition. TCP listeners get the network filters (gRPC providers only,
 * see model/ext-authz.ts). The rules were lowered once in ir/authz.ts; this module only serialises.
 */
import type { ExtAuthzIR, InboundSecurityIR, ListenerIR } from '../../ir/types.js';
import type { ExtAuthzHttpProvider } from '../../policy/types.js';
import { clusterName } from '../names.js';
import { anyType } from '../type-urls.js';
import { durationOf } from '../resources/common.js';
import type { HttpFilterPlugin } from './index.js';
import { RBAC_HTTP_FILTER, RBAC_NETWORK_FILTER, rbacPolicy } from './rbac.js';

export const EXT_AUTHZ_HTTP_FILTER = 'envoy.filters.http.ext_authz';
export const EXT_AUTHZ_NETWORK_FILTER = 'envoy.filters.network.ext_authz';
/** Istio's prefix: the RBAC filter's metadata keys and stats read `istio_ext_authz_shadow_...`. */
export const EXT_AUTHZ_SHADOW_PREFIX = 'istio_ext_authz_';

type Obj = Record<string, unknown>;

/** The CUSTOM rules as shadow rules of one action (DENY: a match is "denied", and names the rule). */
function shadowRules(sec: InboundSecurityIR): Obj {
  const custom = sec.policies.filter((p) => p.action === 'CUSTOM');
  const policies = Object.fromEntries(custom.flatMap((p) => p.rules.map((r) => [r.name, rbacPolicy(r)])));
  return { shadow_rules: { action: 'DENY', policies }, shadow_rules_stat_prefix: EXT_AUTHZ_SHADOW_PREFIX };
}

/** "A CUSTOM rule matched": the shadow engine recorded an effective policy id. */
function enabledWhen(filter: string): Obj {
  const key = `${EXT_AUTHZ_SHADOW_PREFIX}shadow_effective_policy_id`;
  return { filter, path: [{ key }], value: { present_match: true } };
}

/** Istio's header patterns as Envoy matchers: `x*` prefix, `*x` suffix, else exact; always case-insensitive. */
function headerList(patterns: string[]): Obj | undefined {
  if (patterns.length === 0) return undefined;
  const one = (h: string): Obj => {
    if (h.startsWith('*')) return { suffix: h.slice(1), ignore_case: true };
    if (h.endsWith('*')) return { prefix: h.slice(0, -1), ignore_case: true };
    return { exact: h, ignore_case: true };
  };
  return { patterns: patterns.map(one) };
}

function grpcService(x: ExtAuthzIR): Obj {
  const envoy_grpc = { cluster_name: clusterName(x.cluster), authority: x.authority };
  return { envoy_grpc, timeout: durationOf(x.provider.timeoutMs) };
}

function httpService(x: ExtAuthzIR, p: ExtAuthzHttpProvider): Obj {
  // The uri is required by Envoy but not used to connect: the cluster is.
  const server_uri = {
    uri: `http://${x.authority}`,
    cluster: clusterName(x.cluster),
    timeout: durationOf(p.timeoutMs),
  };
  const out: Obj = { server_uri };
  if (p.pathPrefix !== undefined) out.path_prefix = p.pathPrefix;
  const add = p.includeAdditionalHeadersInCheck.map((h) => ({ key: h.name, value: h.value }));
  if (add.length > 0) out.authorization_request = { headers_to_add: add };
  const response: Obj = {};
  const upstream = headerList(p.headersToUpstreamOnAllow);
  const onDeny = headerList(p.headersToDownstreamOnDeny);
  const onAllow = headerList(p.headersToDownstreamOnAllow);
  if (upstream) response.allowed_upstream_headers = upstream;
  if (onDeny) response.allowed_client_headers = onDeny;
  if (onAllow) response.allowed_client_headers_on_success = onAllow;
  if (Object.keys(response).length > 0) out.authorization_response = response;
  return out;
}

function httpExtAuthz(x: ExtAuthzIR): Obj {
  const p = x.provider;
  const c: Obj = {
    '@type': anyType('envoy.extensions.filters.http.ext_authz.v3.ExtAuthz'),
    transport_api_version: 'V3',
    filter_enabled_metadata: enabledWhen(RBAC_HTTP_FILTER),
  };
  if (p.kind === 'extAuthzHttp') {
    c.http_service = httpService(x, p);
    const allowed = headerList(p.includeRequestHeadersInCheck);
    if (allowed) c.allowed_headers = allowed;
  } else {
    c.grpc_service = grpcService(x);
  }
  if (p.failOpen) c.failure_mode_allow = true;
  if (p.statusOnError !== undefined) c.status_on_error = { code: p.statusOnError };
  const body = p.includeRequestBodyInCheck;
  if (body) {
    c.with_request_body = {
      max_request_bytes: body.maxRequestBytes,
      allow_partial_message: body.allowPartialMessage,
      pack_as_bytes: body.packAsBytes,
    };
  }
  return { name: EXT_AUTHZ_HTTP_FILTER, typed_config: c };
}

/** HTTP listeners: the shadow RBAC filter and the ext_authz filter, in that order. */
export const extAuthzFilter: HttpFilterPlugin = {
  name: EXT_AUTHZ_HTTP_FILTER,
  build(l: ListenerIR) {
    const x = l.security?.extAuthz;
    if (!x || !l.http) return undefined;
    const rbac = { '@type': anyType('envoy.extensions.filters.http.rbac.v3.RBAC'), ...shadowRules(l.security!) };
    return [{ name: RBAC_HTTP_FILTER, typed_config: rbac }, httpExtAuthz(x)];
  },
};

/** TCP listeners (gRPC providers): network RBAC in shadow mode, then the network ext_authz filter. */
export function networkExtAuthzFilters(l: ListenerIR): object[] {
  const x = l.security?.extAuthz;
  if (!x || l.http || x.provider.kind !== 'extAuthzGrpc') return [];
  const rbac = {
    '@type': anyType('envoy.extensions.filters.network.rbac.v3.RBAC'),
    stat_prefix: `inbound_${l.port}_ext_authz_`,
    ...shadowRules(l.security!),
  };
  const extAuthz: Obj = {
    '@type': anyType('envoy.extensions.filters.network.ext_authz.v3.ExtAuthz'),
    stat_prefix: `inbound_${l.port}_ext_authz_`,
    grpc_service: grpcService(x),
    transport_api_version: 'V3',
    filter_enabled_metadata: enabledWhen(RBAC_NETWORK_FILTER),
  };
  if (x.provider.failOpen) extAuthz.failure_mode_allow = true;
  return [
    { name: RBAC_NETWORK_FILTER, typed_config: rbac },
    { name: EXT_AUTHZ_NETWORK_FILTER, typed_config: extAuthz },
  ];
}
