/**
 * Stage: decode. `security.istio.io` PeerAuthentication: mTLS mode for workloads, with per-port overrides.
 */
import type { MapReader } from '../reader.js';
import type { MtlsSetting, PeerAuthenticationSpec } from '../security-types.js';
import { readLabelSelector } from './common.js';

const MODES = ['STRICT', 'PERMISSIVE', 'DISABLE', 'UNSET'] as const;

export function decodePeerAuthentication(spec: MapReader | undefined): PeerAuthenticationSpec | undefined {
  if (!spec) return { mode: 'UNSET', portLevel: {} };
  const selector = readLabelSelector(spec, 'selector', 'matchLabels');
  const mtls = spec.map('mtls');
  const mode = (mtls?.str('mode', { oneOf: MODES }) ?? 'UNSET') as MtlsSetting;
  mtls?.done();
  const portLevel: Record<number, MtlsSetting> = {};
  const ports = spec.map('portLevelMtls');
  for (const key of ports?.keys() ?? []) {
    const port = Number(key);
    const m = ports!.map(key);
    const pm = (m?.str('mode', { required: true, oneOf: MODES }) ?? 'UNSET') as MtlsSetting;
    m?.done();
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      ports!.report('CH0204', key, `"${key}" is not a port number`);
      continue;
    }
    portLevel[port] = pm;
  }
  if (ports && !selector) spec.report('CH0204', 'portLevelMtls', 'needs a selector (as in Istio, port-level settings apply to selected workloads only)');
  ports?.done();
  spec.unsupported(['targetRef', 'targetRefs']);
  spec.done();
  return { mode, portLevel, ...(selector ? { selector } : {}) };
}
