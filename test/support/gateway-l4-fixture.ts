/**
 * testdata/golden/gateway-l4's mesh (an ingress gateway with PASSTHROUGH, TCP, TLS-terminating and ISTIO_MUTUAL
 * servers, and an egress gateway) with AuthorizationPolicies on the gateways and the backends, for graph and
 * explain tests. Mesh default DENY: every edge is one a rule allows.
 */
import { readFileSync } from 'node:fs';

export const GATEWAY_L4 = readFileSync('testdata/golden/gateway-l4/input/gateway-l4.yaml', 'utf8');

/** Lines 1-... of p.yaml: the policies (positions asserted by tests). */
export const L4_POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ingress, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  rules:
    - from: [{ source: { ipBlocks: [203.0.113.0/24] } }]
      to: [{ operation: { ports: ["8443", "31400"] } }]
    - from: [{ source: { principals: [cluster.local/ns/partner/sa/client] } }]
      to: [{ operation: { ports: ["31401"] } }]
    - to: [{ operation: { methods: [GET] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-b, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: DENY
  rules: [{ when: [{ key: connection.sni, values: [b.example.com] }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: secure, namespace: shop }
spec:
  selector: { matchLabels: { app: secure } }
  rules:
    - from: [{ source: { principals: [cluster.local/ns/istio-system/sa/ingressgateway] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: egress, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: egressgateway } }
  rules:
    - from: [{ source: { principals: [cluster.local/ns/shop/sa/secure] } }]
`;

export const l4Mesh = (policies = L4_POLICIES): Record<string, string> => ({
  'gateway-l4.yaml': GATEWAY_L4,
  'p.yaml': policies,
});
