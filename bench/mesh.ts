/**
 * Deterministic synthetic meshes for benchmarks: `services` ServiceEntries, each with `endpointsPerService` inline
 * endpoints; `proxies` client workloads (WorkloadEntry + Sidecar scoped to `scope` services, with an inbound port);
 * one AuthorizationPolicy per client workload. Written as policy files into a directory.
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

export function writeMesh(dir: string, size: MeshSize): void {
  mkdirSync(path.join(dir, 'services'), { recursive: true });
  mkdirSync(path.join(dir, 'proxies'), { recursive: true });
  for (let i = 0; i < size.services; i++) writeFileSync(path.join(dir, 'services', `svc-${i}.yaml`), serviceFile(i, size.endpointsPerService));
  for (let p = 0; p < size.proxies; p++) writeFileSync(path.join(dir, 'proxies', `client-${p}.yaml`), proxyFile(p, size));
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
