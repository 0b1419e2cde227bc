/**
 * Stage: model. Checks on external services that need the service and its DestinationRule together: TLS (SIMPLE,
 * MUTUAL or ISTIO_MUTUAL) to a DYNAMIC_DNS service (wildcard hosts) would need the SNI and the server's names taken
 * from each request (Envoy's auto_sni and auto_san_validation, as Istio sets them), which Chancery does not do yet;
 * a fixed SNI would be wrong for every name but one (and Envoy refuses it), so it is rejected rather than half done.
 */
import type { Diagnostics } from '../diag/diagnostic.js';
import { objectRef } from '../policy/types.js';
import type { TrafficPolicy } from '../policy/traffic-types.js';
import { serviceByHost } from './index.js';
import type { MeshModel } from './mesh-model.js';

/** Any TLS towards the service: SIMPLE or MUTUAL origination, or the mesh's own mTLS (ISTIO_MUTUAL). */
const originates = (tp: TrafficPolicy | undefined): boolean =>
  !!tp && [tp, ...tp.portLevel.map((p) => p.policy)].some((l) => typeof l.tls === 'object' || l.tls === 'ISTIO_MUTUAL');

export function checkExternalServices(model: MeshModel, diags: Diagnostics): void {
  for (const dr of model.routing.destinationRules.values()) {
    if (serviceByHost(model, dr.spec.host.value)?.resolution !== 'DYNAMIC_DNS') continue;
    if (![dr.spec.trafficPolicy, ...dr.spec.subsets.map((s) => s.trafficPolicy)].some(originates)) continue;
    const message =
      `tls: TLS to ${dr.spec.host.value} (resolution DYNAMIC_DNS) would need the SNI of each request, ` +
      'which is not supported yet; originate TLS to each host with resolution: DNS, or let the application speak TLS';
    diags.report('CH0205', message, {
      location: dr.spec.host.at,
      path: 'spec.host',
      object: objectRef('DestinationRule', dr),
    });
  }
}
