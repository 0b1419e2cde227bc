/**
 * Stage: decode. `networking.istio.io` Sidecar in explicit mode (`captureMode: NONE`, no iptables): ingress
 * listeners forwarding to the application, egress listeners the application calls, and the egress host scope.
 */
import type { Origin } from '../../diag/diagnostic.js';
import type { MapReader } from '../reader.js';
import type { SidecarEgress, SidecarIngress, SidecarSpec } from '../types.js';
import { readHostPort, readIpAddress, readLabelSelector, readSidecarPort } from './common.js';

function readCaptureMode(r: MapReader): void {
  const mode = r.str('captureMode', { oneOf: ['NONE', 'DEFAULT', 'IPTABLES'] });
  if (mode && mode !== 'NONE') r.report('CH0205', 'captureMode', `${mode} (transparent capture) is not supported yet; Chancery runs in explicit mode (NONE)`);
}

export function decodeSidecar(spec: MapReader | undefined, at: Record<string, Origin>): SidecarSpec | undefined {
  if (!spec) return undefined;
  const workloadSelector = readLabelSelector(spec, 'workloadSelector', 'labels');
  if (spec.has('workloadSelector')) at['spec.workloadSelector'] = spec.loc('workloadSelector');
  const ingress: SidecarIngress[] = [];
  for (const r of spec.maps('ingress') ?? []) {
    const portR = r.map('port', { required: true });
    const port = portR ? readSidecarPort(portR) : undefined;
    const bind = readIpAddress(r, 'bind', false);
    readCaptureMode(r);
    const defaultEndpoint = readHostPort(r, 'defaultEndpoint', true);
    r.unsupported(['tls', 'connectionPool']);
    r.done();
    if (port && defaultEndpoint) ingress.push({ port, defaultEndpoint, at: r.at, ...(bind ? { bind } : {}) });
  }
  const egress: SidecarEgress[] = [];
  for (const r of spec.maps('egress') ?? []) {
    const portR = r.map('port');
    const port = portR ? readSidecarPort(portR) : undefined;
    const bind = readIpAddress(r, 'bind', false);
    readCaptureMode(r);
    const hosts: SidecarEgress['hosts'] = [];
    (r.strList('hosts', { required: true, nonEmpty: true }) ?? []).forEach((h, i) => {
      const slash = h.value.indexOf('/');
      const ns = slash > 0 ? h.value.slice(0, slash) : '';
      const host = slash > 0 ? h.value.slice(slash + 1) : '';
      if (!ns || !host || host.includes('/')) {
        r.ctx.diags.report('CH0204', `${r.sub('hosts')}[${i}]: "${h.value}" must be namespace/host (examples: ./*, */*, shop/backend.shop.svc)`, {
          location: h.at,
          path: `${r.sub('hosts')}[${i}]`,
          object: r.ctx.object,
        });
        return;
      }
      hosts.push({ namespace: ns, host, at: h.at });
    });
    r.done();
    egress.push({ hosts, at: r.at, ...(port ? { port } : {}), ...(bind ? { bind } : {}) });
  }
  spec.unsupported(['outboundTrafficPolicy', 'inboundConnectionPool']);
  spec.done();
  return { ingress, egress, ...(workloadSelector ? { workloadSelector } : {}) };
}
