/**
 * Stage: xds. The http_connection_manager of every HTTP listener, sidecar or gateway: request normalisation before
 * any filter or route sees the request, the HTTP filter table, access log and tracing, the client-certificate
 * header, and its route table (RDS, or inline for inbound listeners).
 */
import type { ListenerIR, RequestHandlingIR } from '../../ir/types.js';
import { httpFilters, type FilterContext } from '../filters/index.js';
import { routeTableName, statPrefix } from '../names.js';
import { anyType } from '../type-urls.js';
import { PATH_NORMALIZATIONS } from '../../policy/types.js';
import { accessLog, tracing } from './access-log.js';
import { ADS_SOURCE } from './common.js';
import { buildVirtualHost } from './route.js';

/**
 * Request normalisation before any filter or route sees the request (Istio's pathNormalization levels, each adding
 * to the one before): BASE applies RFC 3986 (dot segments, percent-decoding of unreserved characters),
 * MERGE_SLASHES collapses `//`, DECODE_AND_MERGE_SLASHES first decodes `%2F` and `%5C`. A trailing dot of the host
 * is always removed. The client address is the connection's peer unless Mesh numTrustedProxies says how many
 * X-Forwarded-For entries were set by proxies we trust, so a caller cannot claim another address with that header.
 * Headers whose names hold an underscore are dropped.
 */
function requestHandling(r: RequestHandlingIR): Record<string, unknown> {
  const level = PATH_NORMALIZATIONS.indexOf(r.pathNormalization);
  return {
    normalize_path: level >= PATH_NORMALIZATIONS.indexOf('BASE'),
    merge_slashes: level >= PATH_NORMALIZATIONS.indexOf('MERGE_SLASHES'),
    path_with_escaped_slashes_action:
      level >= PATH_NORMALIZATIONS.indexOf('DECODE_AND_MERGE_SLASHES') ? 'UNESCAPE_AND_FORWARD' : 'KEEP_UNCHANGED',
    strip_trailing_host_dot: true,
    use_remote_address: true,
    xff_num_trusted_hops: r.numTrustedProxies,
    // Many servers read `x_user` as `x-user`; a rule on `x-user` must not be dodged by the other spelling.
    common_http_protocol_options: { headers_with_underscores_action: 'DROP_HEADER' },
  };
}

export function httpConnectionManager(l: ListenerIR, tls: boolean, ctx: FilterContext): object {
  const hcm: Record<string, unknown> = {
    '@type': anyType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
    stat_prefix: statPrefix(l.direction, l.port),
    codec_type: 'AUTO',
    ...requestHandling(l.http!.requests),
    http_filters: httpFilters(l, ctx),
    access_log: accessLog(l.telemetry?.accessLog, l.security?.policies.some((p) => p.dryRun) ?? false),
  };
  const trace = tracing(l.telemetry?.tracing);
  if (trace) hcm.tracing = trace;
  if (l.direction === 'inbound') {
    // The application sees the caller's SPIFFE id in x-forwarded-client-cert; a header sent by the caller is dropped.
    hcm.forward_client_cert_details = tls ? 'SANITIZE_SET' : 'SANITIZE';
    if (tls) hcm.set_current_client_cert_details = { uri: true };
  } else if (l.direction === 'gateway') {
    // An outside client's x-forwarded-client-cert is never passed on; the callee's sidecar sets the gateway's own.
    hcm.forward_client_cert_details = 'SANITIZE';
  }
  if (l.http!.rds !== undefined) {
    hcm.rds = { route_config_name: routeTableName(l.http!.rds), config_source: ADS_SOURCE };
  } else {
    hcm.route_config = {
      name: statPrefix(l.direction, l.port),
      virtual_hosts: (l.http!.inline ?? []).map(buildVirtualHost),
    };
  }
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: hcm };
}
