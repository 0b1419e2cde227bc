/**
 * Deterministic synthetic meshes for benchmarks: `services` ServiceEntries, each with `endpointsPerService` inline
 * endpoints; `proxies` client workloads (WorkloadEntry + Sidecar scoped to `scope` services, with an inbound port);
 * one AuthorizationPolicy per client workload; and a fleet: a WorkloadGroup behind service fleet.bench.svc, called
 * by FLEET_CALLERS workloads scoped to it alone. Written as policy files into a directory.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface MeshSize {
  name: string;
  services: number;
  endpointsPerService: number;
  proxies: number;
  scope: number;
}

export const SIZES: Record<string, MeshSize> = {
  S: { name: 'S', services: 100, endpointsPerService: 10, proxies: 100, scope: 20 },
  M: { name: 'M', services: 1000, endpointsPerService: 10, proxies: 1000, scope: 20 },
  L: { name: 'L', services: 5000, endpointsPerService: 10, proxies: 5000, scope: 20 },
};

const ip = (n: number, base: number) => `10.${base}.${Math.floor(n / 250)}.${(n % 250) + 1}`;

/** A service with its endpoints; `flapped` moves its first endpoint to another address (an endpoint change). */
export function serviceFile(i: number, endpoints: number, flapped = false): string {
  const eps = Array.from({ length: endpoints }, (_, e) => `    - { address: ${flapped && e === 0 ? ip(i, 99) : ip(i * endpoints + e, 100)}, ports: { http: 8080 } }`).join('\n');
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc-${i}, namespace: bench }
spec:
  hosts: [svc-${i}.bench.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints:
${eps}
`;
}

export function proxyFile(p: number, size: MeshSize, policyVariant = 0): string {
  const hosts = Array.from({ length: size.scope }, (_, k) => `"./svc-${(p * 7 + k * 13) % size.services}.bench.svc"`);
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: client-${p}, namespace: bench, labels: { app: client-${p} } }
spec: { address: ${ip(p, 1)}, serviceAccount: client-${p % 50} }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: client-${p}, namespace: bench }
spec:
  workloadSelector: { labels: { app: client-${p} } }
  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: 127.0.0.1:9000
  egress:
    - port: { number: 15001, protocol: HTTP, name: egress }
      hosts: [${[...new Set(hosts)].join(', ')}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: client-${p}, namespace: bench }
spec:
  selector: { matchLabels: { app: client-${p} } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/bench/sa/client-${(p + 1) % 50}"] } }]
      to: [{ operation: { methods: [GET], paths: ["/api/${policyVariant}/*"] } }]
`;
}

/** Workloads that call the fleet's service (and nothing else): the proxies a registration affects. */
export const FLEET_CALLERS = 20;

/** The group instances register into, its service, its callers; every caller may call it. */
export function fleetFile(): string {
  const callers = Array.from({ length: FLEET_CALLERS }, (_, i) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: fleet-caller-${i}, namespace: bench, labels: { app: fleet-caller } }
spec: { address: ${ip(i, 2)}, serviceAccount: fleet-caller }
`);
  return [
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: fleet, namespace: bench }
spec:
  hosts: [fleet.bench.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: fleet } }
`,
    `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: fleet, namespace: bench, annotations: { chancery.dev/max-instances: "100000" } }
spec:
  metadata: { labels: { app: fleet } }
  template: { serviceAccount: fleet, ports: { http: 8080 } }
`,
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: fleet, namespace: bench }
spec:
  workloadSelector: { labels: { app: fleet } }
  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: 127.0.0.1:9000
  egress:
    - port: { number: 15001, protocol: HTTP, name: egress }
      hosts: ["./svc-0.bench.svc"]
`,
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: fleet-caller, namespace: bench }
spec:
  workloadSelector: { labels: { app: fleet-caller } }
  egress:
    - port: { number: 15001, protocol: HTTP, name: egress }
      hosts: ["./fleet.bench.svc"]
`,
    `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: fleet, namespace: bench }
spec:
  selector: { matchLabels: { app: fleet } }
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/bench/sa/fleet-caller"] } }] }]
`,
    ...callers,
  ].join('---\n');
}

/** The address of fleet instance `i` (a network of its own). */
export const fleetAddress = (i: number) => ip(i, 200);

export function writeMesh(dir: string, size: MeshSize): void {
  mkdirSync(path.join(dir, 'services'), { recursive: true });
  mkdirSync(path.join(dir, 'proxies'), { recursive: true });
  for (let i = 0; i < size.services; i++) writeFileSync(path.join(dir, 'services', `svc-${i}.yaml`), serviceFile(i, size.endpointsPerService));
  for (let p = 0; p < size.proxies; p++) writeFileSync(path.join(dir, 'proxies', `client-${p}.yaml`), proxyFile(p, size));
  writeFileSync(path.join(dir, 'fleet.yaml'), fleetFile());
  writeFileSync(
    path.join(dir, 'mesh.yaml'),
    `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  xds: { debounce: { quiet: 100ms, max: 1s } }
`,
  );
}
