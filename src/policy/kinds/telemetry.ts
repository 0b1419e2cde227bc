/**
 * Stage: decode. `telemetry.istio.io` Telemetry: which access log and tracing providers a workload's sidecar uses.
 * Providers are named in the Mesh (`extensionProviders`), except `envoy`, the built-in JSON access log on stdout.
 */
import type { MapReader } from '../reader.js';
import type { TelemetrySpec } from '../types.js';
import { readLabelSelector } from './common.js';

function providers(r: MapReader): string[] {
  return (r.maps('providers') ?? []).flatMap((p) => {
    const name = p.str('name', { required: true });
    p.done();
    return name ? [name] : [];
  });
}

export function decodeTelemetry(spec: MapReader | undefined): TelemetrySpec | undefined {
  if (!spec) return {};
  const out: TelemetrySpec = {};
  const selector = readLabelSelector(spec, 'selector', 'matchLabels');
  if (selector) out.selector = selector;
  const logs = spec.maps('accessLogging') ?? [];
  if (logs.length > 1) spec.report('CH0205', 'accessLogging', 'only one accessLogging entry is supported');
  for (const l of logs.slice(0, 1)) {
    out.accessLogging = { providers: providers(l), disabled: l.bool('disabled') ?? false, at: l.at };
    l.unsupported(['filter', 'match']);
    l.done();
  }
  const traces = spec.maps('tracing') ?? [];
  if (traces.length > 1) spec.report('CH0205', 'tracing', 'only one tracing entry is supported');
  for (const t of traces.slice(0, 1)) {
    out.tracing = {
      providers: providers(t),
      randomSamplingPercentage: t.num('randomSamplingPercentage', { min: 0, max: 100 }) ?? 1,
      disabled: t.bool('disableSpanReporting') ?? false,
      at: t.at,
    };
    t.unsupported(['customTags', 'match', 'useRequestIdForTraceSampling', 'enableIstioTags']);
    t.done();
  }
  spec.unsupported(['metrics'], 'overrides are not supported yet (each sidecar exposes Envoy\'s Prometheus stats on port 15090)');
  spec.unsupported(['targetRef', 'targetRefs']);
  spec.done();
  return out;
}
