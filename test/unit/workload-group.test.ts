/**
 * WorkloadGroup, from the decoder to the compile: field tables (code and file:line:col), Istio's label order, the
 * instance limit, which group owns a name, and that a registration compiles the new instance and its callers only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileSource } from '../../src/compiler.js';
import { groupOfInstance, type Group } from '../../src/model/groups.js';

const src = (files: Record<string, string>) => ({
  revision: 't',
  files: Object.entries(files).map(([path, text]) => ({ path, text })),
});
type Where = { file: string; line: number; column: number } | undefined;
const at = (l: Where) => (l ? `${l.file}:${l.line}:${l.column}` : '-');
const diagnose = (files: Record<string, string>) =>
  compileSource(src(files)).diagnostics.map((d) => `${d.code} ${at(d.location)}`);

const WG = (spec: string, annotations = '', ns = 'ns', name = 'api') => `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: ${name}, namespace: ${ns}${annotations ? `, annotations: { ${annotations} }` : ''} }
spec:
${spec}`;
const TEMPLATE = '  template: { serviceAccount: api, ports: { http: 8080 } }\n';

test('WorkloadGroup fields: each decoded or refused at its line', () => {
  const cases: [string, string, string[]][] = [
    ['a clean group', WG(`  metadata: { labels: { app: api }, annotations: { team: a } }\n${TEMPLATE}`), []],
    ['template is required', WG('  metadata: { labels: { app: api } }\n'), ['CH0203 a.yaml:5:3']],
    ['an address in the template', WG('  template: { address: 10.0.0.1 }\n'), ['CH0204 a.yaml:5:24']],
    ['network (one network only)', WG('  template: { network: vpc-1 }\n'), ['CH0205 a.yaml:5:15']],
    ['probe needs an agent', WG(`${TEMPLATE}  probe: { httpGet: { port: 8080 } }\n`), ['CH0205 a.yaml:6:3']],
    ['unknown template field', WG('  template: { bogus: 1 }\n'), ['CH0201 a.yaml:5:15']],
    ['bad weight', WG('  template: { weight: 0 }\n'), ['CH0204 a.yaml:5:23']],
    ['max-instances annotation', WG(TEMPLATE, 'chancery.dev/max-instances: "3"'), []],
    ['bad max-instances', WG(TEMPLATE, 'chancery.dev/max-instances: "many"'), ['CH0204 a.yaml:3:52']],
    ['max-instances of 0', WG(TEMPLATE, 'chancery.dev/max-instances: "0"'), ['CH0204 a.yaml:3:52']],
  ];
  for (const [name, text, expect] of cases) assert.deepEqual(diagnose({ 'a.yaml': text }), expect, name);
});

test("labels: spec.metadata.labels over template.labels (Istio's order); annotation, then Mesh default limit", () => {
  const mesh =
    'apiVersion: chancery.dev/v1alpha1\nkind: Mesh\nmetadata: { name: m }\n' +
    'spec: { registration: { maxInstances: 7 } }\n';
  const r = compileSource(
    src({
      'g.yaml': WG(
        '  metadata: { labels: { app: api, tier: gold } }\n  template: { labels: { tier: tin, zone: z }, weight: 3 }\n',
      ),
      'h.yaml': WG(TEMPLATE, 'chancery.dev/max-instances: "2"', 'ns', 'web'),
      'm.yaml': mesh,
    }),
  );
  assert.ok(r.ok, JSON.stringify(r.diagnostics));
  const [api, web] = r.model!.groups;
  assert.deepEqual(api.labels, { app: api.labels.app, tier: 'gold', zone: 'z' });
  assert.equal(api.serviceAccount, 'default');
  assert.equal(api.identity, 'spiffe://cluster.local/ns/ns/sa/default');
  assert.deepEqual([api.maxInstances, web.maxInstances], [7, 2]);
  assert.deepEqual(api.origin, { file: 'g.yaml', line: 6, column: 13, revision: 't' }, 'the template is the origin');
});

test('reserved identity: a group in the root namespace may not run as the control plane', () => {
  const text = WG('  template: { serviceAccount: chancery }\n', '', 'istio-system');
  assert.deepEqual(diagnose({ 'a.yaml': text }), ['CH0409 a.yaml:5:31']);
});

test('a selector that matches only a group (no instance yet) is no CH0303 warning', () => {
  const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: ns }
spec:
  hosts: [api.ns.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: api } }
`;
  assert.deepEqual(diagnose({ 'se.yaml': se }), ['CH0303 se.yaml:7:21']);
  assert.deepEqual(diagnose({ 'se.yaml': se, 'g.yaml': WG(`  metadata: { labels: { app: api } }\n${TEMPLATE}`) }), []);
});

test('which group a name is inside: <group>-<something>, the longest group name wins, same namespace only', () => {
  const g = (id: string) => ({ id, namespace: id.split('/')[0], name: id.split('/')[1] }) as Group;
  const groups = [g('ns/api'), g('ns/api-v2'), g('other/api')];
  const owner = (id: string) => groupOfInstance(groups, id)?.id;
  assert.equal(owner('ns/api-1'), 'ns/api');
  assert.equal(owner('ns/api-v2-1'), 'ns/api-v2', 'never the shorter api');
  assert.equal(owner('other/api-1'), 'other/api');
  const long = `ns/api-${'a'.repeat(260)}`;
  const bads = ['ns/api', 'ns/api-', 'ns/apix-1', 'ns/web-1', 'ns/api-X', 'ns/api-1/x', 'api-1', long];
  for (const bad of bads) {
    assert.equal(owner(bad), undefined, bad);
  }
});

const MESH = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: ns }
spec:
  hosts: [api.ns.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: api } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: other, namespace: ns }
spec:
  hosts: [other.ns.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.1.1.1 }]
---
${WG(`  metadata: { labels: { app: api } }
  template: { serviceAccount: api, ports: { http: 9090 }, locality: eu/west, weight: 5 }
`)}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: api, namespace: ns }
spec:
  workloadSelector: { labels: { app: api } }
  egress: [{ hosts: ["./other.ns.svc"] }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-1, namespace: ns, labels: { app: web } }
spec: { address: 10.0.0.2, serviceAccount: web }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: web, namespace: ns }
spec:
  workloadSelector: { labels: { app: web } }
  egress: [{ hosts: ["./api.ns.svc"] }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: bot-1, namespace: ns, labels: { app: bot } }
spec: { address: 10.0.0.3, serviceAccount: bot }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: bot, namespace: ns }
spec:
  workloadSelector: { labels: { app: bot } }
  egress: [{ hosts: ["./other.ns.svc"] }]
`;

test('a registration compiles the new instance and the proxies that reach its service, nothing else', () => {
  const source = src({ 'mesh.yaml': MESH });
  let prev = compileSource(source);
  assert.ok(prev.ok, JSON.stringify(prev.diagnostics));
  const regs: { id: string; group: string; address: string }[] = [];
  for (let i = 1; i <= 3; i++) {
    regs.push({ id: `ns/api-${i}`, group: 'ns/api', address: `10.2.0.${i}` });
    const r = compileSource(source, [], prev, { registered: [...regs] });
    assert.ok(r.ok, JSON.stringify(r.diagnostics));
    assert.equal(r.compiled, 2, `registration ${i}: the new instance and its caller web-1`);
    assert.equal(r.proxies.get('ns/bot-1'), prev.proxies.get('ns/bot-1'), 'bot-1 reused as it was');
    const resources = (c: typeof r, k: number) => c.proxies.get(`ns/api-${k}`)!.resources;
    for (let k = 1; k < i; k++) assert.equal(resources(r, k), resources(prev, k), `api-${k} reused`);
    prev = r;
  }
  const w = prev.model!.workloads.find((x) => x.id === 'ns/api-2')!;
  assert.deepEqual(w.registered, { group: 'ns/api' });
  assert.equal(w.identity, 'spiffe://cluster.local/ns/ns/sa/api');
  assert.deepEqual(w.origin, prev.model!.groups[0].origin);
  const eds = [...prev.proxies.get('ns/web-1')!.resources].find(([t]) => t.endsWith('ClusterLoadAssignment'))![1];
  const cla = eds.find((x) => x.name === 'outbound|80||api.ns.svc')!.json as any;
  assert.deepEqual(cla.endpoints[0].locality, { region: 'eu', zone: 'west' });
  assert.deepEqual(
    cla.endpoints[0].lb_endpoints.map((e: any) => {
      const a = e.endpoint.address.socket_address;
      return `${a.address}:${a.port_value}/${e.load_balancing_weight}`;
    }),
    ['10.2.0.1:9090/5', '10.2.0.2:9090/5', '10.2.0.3:9090/5'],
  );
  // Leaving is the same path: one instance gone, its caller compiled again, the others reused.
  const r = compileSource(source, [], prev, { registered: regs.slice(1) });
  assert.equal(r.compiled, 1);
  assert.ok(!r.proxies.has('ns/api-1'));
});

test('registered instances the model ignores: unknown group, a name outside it, a committed name', () => {
  const committed = `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: api-9, namespace: ns, labels: { app: api } }
spec: { address: 10.0.0.9 }
`;
  const r = compileSource(src({ 'mesh.yaml': MESH + committed }), [], undefined, {
    registered: [
      { id: 'ns/api-1', group: 'ns/nope', address: '10.2.0.1' },
      { id: 'ns/web-7', group: 'ns/api', address: '10.2.0.2' },
      { id: 'ns/api-9', group: 'ns/api', address: '10.2.0.3' },
    ],
  });
  assert.ok(r.ok);
  assert.deepEqual(r.model!.workloads.filter((w) => w.registered), []);
  assert.equal(r.model!.workloads.find((w) => w.id === 'ns/api-9')!.address, '10.0.0.9', 'the committed one');
});
