/**
 * Stage: xds. The default access log of every sidecar listener: one JSON line per request on Envoy's stdout, with
 * the caller's SPIFFE id and, for denied requests, the RBAC rule that decided (in response_code_details, e.g.
 * `rbac_access_denied_matched_policy[shop/backend-no-admin/rules[0]]`).
 */
import { anyType } from '../type-urls.js';

const FIELDS: Record<string, string> = {
  start_time: '%START_TIME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  authority: '%REQ(:AUTHORITY)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  duration_ms: '%DURATION%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  upstream_host: '%UPSTREAM_HOST%',
  downstream_peer: '%DOWNSTREAM_PEER_URI_SAN%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  request_id: '%REQ(X-REQUEST-ID)%',
};

export function defaultAccessLog(): object[] {
  return [
    {
      name: 'envoy.access_loggers.stdout',
      typed_config: {
        '@type': anyType('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog'),
        log_format: { json_format: FIELDS },
      },
    },
  ];
}
