/**
 * Stage: model. Which Telemetry applies to a workload, per feature: the most specific one that sets it (selector in
 * the workload's namespace, then the namespace-wide one, then the root namespace's), as in Istio. Checks that every
 * provider named exists.
 */
import type { Diagnostics, Origin } from '../diag/diagnostic.js';
import {
  objectRef,
  type ExtensionProvider,
  type PolicyObject,
  type Telemetry,
  type TelemetrySpec,
} from '../policy/types.js';
import { labelsMatch, type MeshModel, type Workload } from './mesh-model.js';
import { track } from './tracking.js';
import { groupSelected } from './groups.js';

export const BUILTIN_ACCESS_LOG = 'envoy';

export interface WorkloadTelemetry {
  accessLog: { kind: 'stdout' } | { kind: 'file'; path: string } | { kind: 'off' };
  tracing?: { service: string; port: number; samplingPercentage: number };
  origins: Origin[];
}

export function collectTelemetry(objects: readonly PolicyObject[]): Telemetry[] {
  return objects.filter((o): o is Telemetry => o.kind === 'Telemetry');
}

function byPrecedence(list: readonly Telemetry[], w: Workload, root: string): Telemetry[] {
  const sel = list.filter(
    (t) => t.spec.selector && t.meta.namespace === w.namespace && labelsMatch(t.spec.selector, w.labels),
  );
  const ns = list.filter((t) => !t.spec.selector && t.meta.namespace === w.namespace);
  const mesh = list.filter((t) => !t.spec.selector && t.meta.namespace === root && w.namespace !== root);
  return [...sel, ...ns, ...mesh];
}

export function telemetryFor(model: MeshModel, w: Workload): WorkloadTelemetry {
  track(`tel:${w.id}`);
  const ordered = byPrecedence(model.telemetry, w, model.mesh.rootNamespace);
  const providers = new Map(model.mesh.extensionProviders.map((p) => [p.name, p]));
  const out: WorkloadTelemetry = { accessLog: { kind: 'stdout' }, origins: [] };
  const logs = ordered.find((t) => t.spec.accessLogging);
  if (logs) {
    const a = logs.spec.accessLogging!;
    out.origins.push(a.at);
    const p = a.providers.map((n) => providers.get(n)).find((x) => x?.kind === 'file');
    out.accessLog = a.disabled
      ? { kind: 'off' }
      : p?.kind === 'file'
        ? { kind: 'file', path: p.path }
        : { kind: 'stdout' };
  }
  const tr = ordered.find((t) => t.spec.tracing);
  if (tr && !tr.spec.tracing!.disabled) {
    const t = tr.spec.tracing!;
    const p = t.providers.map((n) => providers.get(n)).find((x) => x?.kind === 'opentelemetry');
    if (p?.kind === 'opentelemetry') {
      out.tracing = { service: p.service, port: p.port, samplingPercentage: t.randomSamplingPercentage };
      out.origins.push(t.at);
    }
  }
  return out;
}

const KIND_NAMES: Record<ExtensionProvider['kind'], string> = {
  file: 'an access log file',
  opentelemetry: 'an OpenTelemetry collector',
  extAuthzHttp: 'an external authorizer',
  extAuthzGrpc: 'an external authorizer',
};

export function checkTelemetry(model: MeshModel, diags: Diagnostics): void {
  const providers = new Map<string, ExtensionProvider>(model.mesh.extensionProviders.map((p) => [p.name, p]));
  for (const t of model.telemetry) {
    const object = objectRef('Telemetry', t.meta);
    const check = (
      section: 'accessLogging' | 'tracing',
      want: ExtensionProvider['kind'],
      spec: TelemetrySpec[typeof section],
    ) => {
      for (const name of spec?.providers ?? []) {
        if (section === 'accessLogging' && name === BUILTIN_ACCESS_LOG) continue;
        const p = providers.get(name);
        if (!p)
          diags.report('CH0305', `${section}: no Mesh extensionProvider named "${name}"`, {
            location: spec!.at,
            object,
            path: `spec.${section}`,
          });
        else if (p.kind !== want)
          diags.report('CH0305', `${section}: provider "${name}" is ${KIND_NAMES[p.kind]}, not usable here`, {
            location: spec!.at,
            object,
          });
      }
    };
    check('accessLogging', 'file', t.spec.accessLogging);
    check('tracing', 'opentelemetry', t.spec.tracing);
    const sel = t.spec.selector;
    const none = sel && !model.workloads.some((w) => w.namespace === t.meta.namespace && labelsMatch(sel, w.labels));
    if (none && !groupSelected(model.groups, t.meta.namespace, sel)) {
      diags.report('CH0303', `selector matches no WorkloadEntry in namespace ${t.meta.namespace}`, {
        location: t.origin,
        object,
      });
    }
  }
}
