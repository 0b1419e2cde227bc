/**
 * Stage: model. Checks on external services that need the service and its DestinationRule together. TLS
 * origination to a DYNAMIC_DNS service (wildcard hosts) takes the SNI and the server's name from each request
 * (Envoy's auto_sni and auto_san_validation, as Istio sets them for dynamic forward proxy clusters), so a fixed
 * `sni` or `subjectAltNames`, right for one name at most, is rejected; so is ISTIO_MUTUAL, which needs a fixed SNI.
 */
import type { Diagnostics } from '../diag/diagnostic.js';
import { objectRef } from '../policy/types.js';
import type { TrafficPolicy } from '../policy/traffic-types.js';
import { serviceByHost } from './index.js';
import type { MeshModel } from './mesh-model.js';

/** What TLS towards a wildcard cannot be: ISTIO_MUTUAL, or a fixed SNI or names (right for one name at most). */
function problem(tp: TrafficPolicy | undefined): string | undefined {
  for (const l of tp ? [tp, ...tp.portLevel.map((p) => p.policy)] : []) {
    if (l.tls === 'ISTIO_MUTUAL' || (typeof l.tls === 'object' && l.tls.mode === 'ISTIO_MUTUAL'))
      return "ISTIO_MUTUAL (the mesh's mTLS) to a wildcard would need the SNI of each request";
    if (typeof l.tls !== 'object') continue;
    if (l.tls.sni !== undefined) return 'a fixed sni cannot hold for every name a wildcard covers';
    if (l.tls.subjectAltNames.length > 0) return 'fixed subjectAltNames cannot hold for every name a wildcard covers';
  }
  return undefined;
}

export function checkExternalServices(model: MeshModel, diags: Diagnostics): void {
  for (const dr of model.routing.destinationRules.values()) {
    if (serviceByHost(model, dr.spec.host.value)?.resolution !== 'DYNAMIC_DNS') continue;
    const why = [dr.spec.trafficPolicy, ...dr.spec.subsets.map((s) => s.trafficPolicy)].map(problem).find(Boolean);
    if (!why) continue;
    const message =
      `tls: ${why} (${dr.spec.host.value} has resolution DYNAMIC_DNS: each request's Host is its SNI and the name ` +
      'its server must hold); write SIMPLE or MUTUAL without sni and subjectAltNames, or list the hosts (DNS)';
    diags.report('CH0205', message, {
      location: dr.spec.host.at,
      path: 'spec.host',
      object: objectRef('DestinationRule', dr),
    });
  }
}
