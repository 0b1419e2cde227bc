/**
 * Stage: xds. RequestAuthentication -> Envoy's jwt_authn filter. As in Istio, a request with an invalid token is
 * rejected (401) and a request without a token passes authentication, leaving the decision to authorization
 * (`requestPrincipals`, `request.auth.*`). A verified token's payload is put in dynamic metadata for RBAC.
 */
import { parseJwksUri } from '../../ir/inbound-security.js';
import type { JwtProviderIR, ListenerIR } from '../../ir/types.js';
import { jwksClusterName } from '../names.js';
import { anyType } from '../type-urls.js';
import { durationOf } from '../resources/common.js';
import type { HttpFilterPlugin } from './index.js';
import { JWT_PAYLOAD_KEY } from './rbac.js';

function provider(p: JwtProviderIR): object {
  const r = p.rule;
  const jwks = r.jwksUri
    ? {
        remote_jwks: {
          http_uri: {
            uri: r.jwksUri,
            cluster: jwksClusterName(parseJwksUri(r.jwksUri)),
            timeout: durationOf(r.timeoutMs ?? 5000),
          },
          cache_duration: '300s',
        },
      }
    : { local_jwks: { inline_string: r.jwks ?? '' } };
  return {
    issuer: r.issuer,
    ...(r.audiences.length > 0 ? { audiences: r.audiences } : {}),
    ...jwks,
    ...(r.fromHeaders.length > 0
      ? {
          from_headers: r.fromHeaders.map((h) => ({
            name: h.name,
            ...(h.prefix !== undefined ? { value_prefix: h.prefix } : {}),
          })),
        }
      : {}),
    ...(r.fromParams.length > 0 ? { from_params: r.fromParams } : {}),
    ...(r.fromCookies.length > 0 ? { from_cookies: r.fromCookies } : {}),
    ...(r.outputPayloadToHeader !== undefined ? { forward_payload_header: r.outputPayloadToHeader } : {}),
    forward: r.forwardOriginalToken,
    ...(r.outputClaimToHeaders.length > 0
      ? { claim_to_headers: r.outputClaimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim })) }
      : {}),
    payload_in_metadata: JWT_PAYLOAD_KEY,
  };
}

export const jwtAuthnFilter: HttpFilterPlugin = {
  name: 'envoy.filters.http.jwt_authn',
  build(l: ListenerIR) {
    const jwt = l.security?.jwt ?? [];
    if (!l.http || jwt.length === 0) return undefined;
    return {
      name: 'envoy.filters.http.jwt_authn',
      typed_config: {
        '@type': anyType('envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication'),
        providers: Object.fromEntries(jwt.map((p) => [p.name, provider(p)])),
        rules: [
          {
            match: { prefix: '/' },
            requires: {
              requires_any: { requirements: [...jwt.map((p) => ({ provider_name: p.name })), { allow_missing: {} }] },
            },
          },
        ],
      },
    };
  },
};
