/**
 * Stage: model. Every credential a DestinationRule's TLS origination names (`credentialName`) must be readable and
 * hold what its mode needs: MUTUAL presents tls.crt and tls.key, and the server is verified with ca.crt unless
 * insecureSkipVerify (Istio's rule for credentialName, SIMPLE and MUTUAL alike). Otherwise the revision is rejected
 * at the credentialName line, and the last good one keeps serving. Reads the model and the credential lookup only.
 */
import type { Diagnostics } from '../diag/diagnostic.js';
import { objectRef } from '../policy/types.js';
import type { TlsOrigination, TrafficPolicy } from '../policy/traffic-types.js';
import type { CredentialLookup } from './gateways.js';
import type { MeshModel } from './mesh-model.js';
import { serviceByHost } from './index.js';

/** The originations of a traffic policy and its port-level settings. */
function originations(tp: TrafficPolicy | undefined): TlsOrigination[] {
  if (!tp) return [];
  const layers = [tp, ...tp.portLevel.map((p) => p.policy)];
  return layers.flatMap((l) => (typeof l.tls === 'object' && l.tls.mode !== 'ISTIO_MUTUAL' ? [l.tls] : []));
}

export function checkOriginationCredentials(model: MeshModel, lookup: CredentialLookup, diags: Diagnostics): void {
  for (const dr of model.routing.destinationRules.values()) {
    if (!serviceByHost(model, dr.spec.host.value)) continue; // no cluster would use it (reported elsewhere)
    const all = [dr.spec.trafficPolicy, ...dr.spec.subsets.map((s) => s.trafficPolicy)].flatMap(originations);
    for (const o of all) {
      if (!o.credential) continue;
      const { name, at: location, path } = o.credential;
      const at = { location, path, object: objectRef('DestinationRule', dr) };
      const state = lookup(name);
      if (!state.ok) {
        const problem = state.unavailable
          ? 'serve was started without --credentials-dir: TLS origination with it fails (503)'
          : state.problem;
        diags.report('CH0308', `credential ${name}: ${problem}`, {
          ...at,
          ...(state.unavailable ? { severity: 'warning' } : {}),
        });
      } else if (o.mode === 'MUTUAL' && state.hasCertificate === false) {
        diags.report('CH0308', `credential ${name} has only ca.crt; MUTUAL presents its tls.crt and tls.key`, at);
      } else if (!o.insecureSkipVerify && !state.hasCa) {
        const message =
          `credential ${name} has no ca.crt, which verifies the server with credentialName ` +
          '(add it, or set insecureSkipVerify: true)';
        diags.report('CH0308', message, at);
      } else {
        for (const w of state.warnings)
          diags.report('CH0308', `credential ${name}: ${w}`, { ...at, severity: 'warning' });
      }
    }
  }
}
