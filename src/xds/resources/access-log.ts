/**
 * Stage: xds. Access logs and tracing of sidecar HTTP listeners (from Telemetry). The access log is one JSON line per
 * request (stdout by default, or a file), with the caller's SPIFFE id and, for denied requests, the RBAC rule that
 * decided (in response_code_details, e.g. `rbac_access_denied_matched_policy[shop/backend-no-admin/rules[0]]`).
 */
import type { ClusterKey, TelemetryIR } from '../../ir/types.js';
import { clusterName } from '../names.js';
import { anyType } from '../type-urls.js';
import { DRY_RUN_PREFIX, RBAC_HTTP_FILTER } from '../filters/rbac.js';

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

/** What dry-run (istio.io/dry-run) policies would have decided (filters/rbac.ts); only where one applies. */
const DRY_RUN_FIELDS: Record<string, string> = {
  dry_run_deny_result: `%DYNAMIC_METADATA(${RBAC_HTTP_FILTER}:${DRY_RUN_PREFIX.DENY}shadow_engine_result)%`,
  dry_run_deny_policy: `%DYNAMIC_METADATA(${RBAC_HTTP_FILTER}:${DRY_RUN_PREFIX.DENY}shadow_effective_policy_id)%`,
  dry_run_allow_result: `%DYNAMIC_METADATA(${RBAC_HTTP_FILTER}:${DRY_RUN_PREFIX.ALLOW}shadow_engine_result)%`,
  dry_run_allow_policy: `%DYNAMIC_METADATA(${RBAC_HTTP_FILTER}:${DRY_RUN_PREFIX.ALLOW}shadow_effective_policy_id)%`,
};

export function accessLog(setting: TelemetryIR['accessLog'] | undefined, dryRun = false): object[] {
  const format = { json_format: dryRun ? { ...FIELDS, ...DRY_RUN_FIELDS } : FIELDS };
  if (setting?.kind === 'off') return [];
  if (setting?.kind === 'file') {
    return [{ name: 'envoy.access_loggers.file', typed_config: { '@type': anyType('envoy.extensions.access_loggers.file.v3.FileAccessLog'), path: setting.path, log_format: format } }];
  }
  return [{ name: 'envoy.access_loggers.stdout', typed_config: { '@type': anyType('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog'), log_format: format } }];
}

/** HCM tracing with Envoy's OpenTelemetry tracer, exporting to the collector's cluster over gRPC. */
export function tracing(t: TelemetryIR['tracing']): object | undefined {
  if (!t) return undefined;
  return {
    random_sampling: { value: t.samplingPercentage },
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: {
        '@type': anyType('envoy.config.trace.v3.OpenTelemetryConfig'),
        // The default :authority would be the cluster name, which is not a valid authority (it holds '|').
        grpc_service: { envoy_grpc: { cluster_name: clusterName(t.cluster), authority: authorityOf(t.cluster) }, timeout: '1s' },
        service_name: t.serviceName,
      },
    },
  };
}

function authorityOf(k: ClusterKey): string {
  return 'host' in k ? `${k.host}:${k.port}` : 'localhost';
}
