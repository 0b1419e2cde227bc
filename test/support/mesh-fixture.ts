/**
 * Writes small policy trees to temporary directories for tests. `simpleMesh` describes N services in one namespace,
 * each with its workloads on distinct loopback addresses and a Sidecar for each workload.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export class PolicyDir {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-policy-'));

  write(rel: string, text: string): this {
    const p = path.join(this.dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, text);
    return this;
  }

  remove(rel: string): this {
    rmSync(path.join(this.dir, rel), { force: true });
    return this;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function serviceEntry(name: string, ns: string, opts: { port?: number; targetPort?: number; protocol?: string } = {}): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [${name}.${ns}.svc]
  ports:
    - { number: ${opts.port ?? 80}, name: http, protocol: ${opts.protocol ?? 'HTTP'}, targetPort: ${opts.targetPort ?? 8080} }
  workloadSelector:
    labels: { app: ${name} }
`;
}

export function workloadEntry(name: string, ns: string, app: string, address: string, sa = app): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${app} } }
spec:
  address: ${address}
  serviceAccount: ${sa}
`;
}

export function sidecar(name: string, ns: string, opts: { selector: Record<string, string>; inboundPort?: number; appEndpoint: string; egressBind: string; egressPort?: number; hosts?: string[] }): string {
  const sel = Object.entries(opts.selector).map(([k, v]) => `${k}: ${v}`).join(', ');
  return `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: ${ns} }
spec:
  workloadSelector:
    labels: { ${sel} }
  ingress:
    - port: { number: ${opts.inboundPort ?? 8080}, protocol: HTTP, name: http }
      defaultEndpoint: ${opts.appEndpoint}
  egress:
    - port: { number: ${opts.egressPort ?? 15001}, protocol: HTTP, name: egress }
      bind: ${opts.egressBind}
      hosts: [${(opts.hosts ?? ['./*']).map((h) => JSON.stringify(h)).join(', ')}]
`;
}

export const docs = (...parts: string[]): string => parts.join('---\n');

/**
 * The smallest mesh with a call in it: workload a-1 (no Sidecar, so its egress listener binds its own loopback
 * address on 15001) calls service b, served by b-1, whose Sidecar forwards to an app on 127.0.0.1:appPort.
 * The ServiceEntry is the file's first document (line 1), which some tests use as a known origin.
 */
export function callerCallee(o: { ns: string; a: string; b: string; appPort: number }): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: b, namespace: ${o.ns} }
spec:
  hosts: [b.${o.ns}.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: b } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: a-1, namespace: ${o.ns}, labels: { app: a } }
spec: { address: ${o.a}, serviceAccount: a }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: b-1, namespace: ${o.ns}, labels: { app: b } }
spec: { address: ${o.b}, serviceAccount: b }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: b, namespace: ${o.ns} }
spec:
  workloadSelector: { labels: { app: b } }
  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: 127.0.0.1:${o.appPort}
`;
}

/** Service api (workload api-1) and two callers, web-1 and bot-1, in namespace ns; no policy. */
export const API_WEB_BOT = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: ns }
spec:
  hosts: [api.ns.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: api } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: api-1, namespace: ns, labels: { app: api } }
spec: { address: 10.0.0.1, serviceAccount: api }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-1, namespace: ns, labels: { app: web } }
spec: { address: 10.0.0.2, serviceAccount: web }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: bot-1, namespace: ns, labels: { app: bot } }
spec: { address: 10.0.0.3, serviceAccount: bot }
`;
