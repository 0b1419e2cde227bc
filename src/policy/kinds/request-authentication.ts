/**
 * Stage: decode. `security.istio.io` RequestAuthentication: which JWTs a workload accepts.
 */
import type { MapReader } from '../reader.js';
import type { JwtRule, RequestAuthenticationSpec } from '../security-types.js';
import { readLabelSelector } from './common.js';

export function decodeRequestAuthentication(spec: MapReader | undefined): RequestAuthenticationSpec | undefined {
  if (!spec) return { jwtRules: [] };
  const selector = readLabelSelector(spec, 'selector', 'matchLabels');
  const jwtRules: JwtRule[] = [];
  for (const r of spec.maps('jwtRules') ?? []) {
    const issuer = r.str('issuer', { required: true });
    const audiences = (r.strList('audiences') ?? []).map((a) => a.value);
    const jwksUri = r.str('jwksUri', { pattern: /^https?:\/\/[^/\s]+(\/\S*)?$/, patternHint: 'an http(s) URL' });
    const jwks = r.str('jwks');
    if (jwks !== undefined) {
      try {
        const parsed = JSON.parse(jwks) as { keys?: unknown };
        if (!Array.isArray(parsed.keys)) r.report('CH0204', 'jwks', 'must be a JSON Web Key Set ({"keys": [...]})');
      } catch {
        r.report('CH0204', 'jwks', 'is not valid JSON');
      }
    }
    if (jwks === undefined && jwksUri === undefined) r.report('CH0203', undefined, 'a JWT rule needs jwks or jwksUri');
    if (jwks !== undefined && jwksUri !== undefined) r.report('CH0204', 'jwksUri', 'give jwks or jwksUri, not both');
    const fromHeaders = (r.maps('fromHeaders') ?? []).map((h) => {
      const name = h.str('name', { required: true }) ?? '';
      const prefix = h.str('prefix');
      h.done();
      return { name, ...(prefix !== undefined ? { prefix } : {}) };
    });
    const fromParams = (r.strList('fromParams') ?? []).map((p) => p.value);
    const forwardOriginalToken = r.bool('forwardOriginalToken') ?? false;
    const outputClaimToHeaders = (r.maps('outputClaimToHeaders') ?? []).map((h) => {
      const header = h.str('header', { required: true }) ?? '';
      const claim = h.str('claim', { required: true }) ?? '';
      h.done();
      return { header, claim };
    });
    const fromCookies = (r.strList('fromCookies') ?? []).map((c) => c.value);
    const outputPayloadToHeader = r.str('outputPayloadToHeader', {
      pattern: /^[A-Za-z0-9-]+$/,
      patternHint: 'a header name',
    });
    const timeoutMs = r.duration('timeout', { minMs: 1, maxMs: 600_000 });
    if (timeoutMs !== undefined && jwksUri === undefined) r.report('CH0204', 'timeout', 'only applies to jwksUri');
    r.done();
    if (issuer === undefined) continue;
    jwtRules.push({
      issuer,
      audiences,
      fromHeaders,
      fromParams,
      forwardOriginalToken,
      outputClaimToHeaders,
      fromCookies,
      at: r.at,
      ...(outputPayloadToHeader !== undefined ? { outputPayloadToHeader } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(jwksUri !== undefined ? { jwksUri } : {}),
      ...(jwks !== undefined ? { jwks } : {}),
    });
  }
  spec.unsupported(['targetRef', 'targetRefs']);
  spec.done();
  return { jwtRules, ...(selector ? { selector } : {}) };
}
