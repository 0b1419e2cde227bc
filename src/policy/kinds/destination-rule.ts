/**
 * Stage: decode. `networking.istio.io` DestinationRule: subsets by labels and traffic policies (load balancing,
 * connection pool / circuit breaking, outlier detection, client TLS mode), also per port.
 */
import type { MapReader } from '../reader.js';
import type {
  ConnectionPool,
  DestinationRuleSpec,
  LoadBalancer,
  OutlierDetection,
  Subset,
  TlsOrigination,
  TrafficPolicy,
} from '../traffic-types.js';
import { DNS_LABEL } from './common.js';
import { CREDENTIAL_NAME } from './gateway.js';

function readLoadBalancer(r: MapReader | undefined): LoadBalancer | undefined {
  if (!r) return undefined;
  const out: LoadBalancer = {};
  const simple = r.str('simple', { oneOf: ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'LEAST_CONN', 'UNSPECIFIED'] });
  if (simple)
    out.simple =
      simple === 'LEAST_CONN'
        ? 'LEAST_REQUEST'
        : simple === 'UNSPECIFIED'
          ? 'ROUND_ROBIN'
          : (simple as LoadBalancer['simple']);
  const ch = r.map('consistentHash');
  if (ch) {
    out.consistentHash = {};
    const header = ch.str('httpHeaderName');
    if (header) out.consistentHash.header = header.toLowerCase();
    const cookie = ch.map('httpCookie');
    if (cookie) {
      const name = cookie.str('name', { required: true }) ?? '';
      const ttlMs = cookie.duration('ttl', { required: true }) ?? 0;
      cookie.unsupported(['path', 'attributes']);
      cookie.done();
      out.consistentHash.cookie = { name, ttlMs };
    }
    if (ch.bool('useSourceIp')) out.consistentHash.sourceIp = true;
    const n = [header, cookie, out.consistentHash.sourceIp].filter(Boolean).length;
    if (n !== 1) ch.report('CH0204', undefined, 'give exactly one of httpHeaderName, httpCookie or useSourceIp');
    ch.unsupported(['httpQueryParameterName', 'ringHash', 'maglev', 'minimumRingSize']);
    ch.done();
  }
  if (out.simple && out.consistentHash) r.report('CH0204', 'consistentHash', 'give simple or consistentHash, not both');
  r.unsupported(['localityLbSetting', 'warmupDurationSecs', 'warmup']);
  r.done();
  return out;
}

function readConnectionPool(r: MapReader | undefined): ConnectionPool | undefined {
  if (!r) return undefined;
  const out: ConnectionPool = {};
  const tcp = r.map('tcp');
  if (tcp) {
    const mc = tcp.int('maxConnections', { min: 1 });
    if (mc !== undefined) out.maxConnections = mc;
    const ct = tcp.duration('connectTimeout', { minMs: 1 });
    if (ct !== undefined) out.connectTimeoutMs = ct;
    tcp.unsupported(['tcpKeepalive', 'maxConnectionDuration', 'idleTimeout']);
    tcp.done();
  }
  const http = r.map('http');
  if (http) {
    const set = (k: keyof ConnectionPool, v: number | undefined) => {
      if (v !== undefined) out[k] = v;
    };
    set('http1MaxPendingRequests', http.int('http1MaxPendingRequests', { min: 1 }));
    set('http2MaxRequests', http.int('http2MaxRequests', { min: 1 }));
    set('maxRequestsPerConnection', http.int('maxRequestsPerConnection', { min: 0 }));
    set('maxRetries', http.int('maxRetries', { min: 0 }));
    set('idleTimeoutMs', http.duration('idleTimeout', { minMs: 1 }));
    http.unsupported(['h2UpgradePolicy', 'useClientProtocol', 'maxConcurrentStreams']);
    http.done();
  }
  r.done();
  return out;
}

function readOutlier(r: MapReader | undefined): OutlierDetection | undefined {
  if (!r) return undefined;
  const out: OutlierDetection = {};
  const set = (k: keyof OutlierDetection, v: number | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('consecutive5xxErrors', r.int('consecutive5xxErrors', { min: 0 }));
  set('consecutiveGatewayErrors', r.int('consecutiveGatewayErrors', { min: 0 }));
  set('intervalMs', r.duration('interval', { minMs: 1 }));
  set('baseEjectionTimeMs', r.duration('baseEjectionTime', { minMs: 1 }));
  set('maxEjectionPercent', r.int('maxEjectionPercent', { min: 0, max: 100 }));
  r.unsupported([
    'splitExternalLocalOriginErrors',
    'consecutiveLocalOriginFailures',
    'minHealthPercent',
    'consecutiveErrors',
  ]);
  r.done();
  return out;
}

export function readTrafficPolicy(r: MapReader | undefined, allowPortLevel = true): TrafficPolicy | undefined {
  if (!r) return undefined;
  const out: TrafficPolicy = { portLevel: [] };
  const lb = readLoadBalancer(r.map('loadBalancer'));
  if (lb) out.loadBalancer = lb;
  const cp = readConnectionPool(r.map('connectionPool'));
  if (cp) out.connectionPool = cp;
  const od = readOutlier(r.map('outlierDetection'));
  if (od) out.outlierDetection = od;
  const tls = r.map('tls');
  if (tls) {
    const mode = tls.str('mode', { required: true, oneOf: ['ISTIO_MUTUAL', 'DISABLE', 'SIMPLE', 'MUTUAL'] });
    if (mode === 'SIMPLE' || mode === 'MUTUAL') {
      const o = readOrigination(tls, mode);
      if (o) out.tls = o;
    } else if (mode) {
      // ISTIO_MUTUAL may name the SNI to send (Istio's egress gateway task: the external host's).
      const sni = mode === 'ISTIO_MUTUAL' ? tls.str('sni') : undefined;
      tls.unsupported(
        [
          ...(mode === 'DISABLE' ? ['sni'] : []),
          'subjectAltNames',
          'clientCertificate',
          'privateKey',
          'caCertificates',
          'credentialName',
        ],
        mode === 'DISABLE'
          ? 'only applies to SIMPLE and MUTUAL'
          : 'only applies to SIMPLE and MUTUAL (and sni to ISTIO_MUTUAL)',
      );
      out.tls = sni !== undefined ? { mode: 'ISTIO_MUTUAL', sni } : (mode as 'ISTIO_MUTUAL' | 'DISABLE');
    }
    tls.unsupported(['caCrl'], 'is not supported yet; put the revoked certificates out of the CA instead');
    tls.done();
  }
  if (allowPortLevel) {
    for (const p of r.maps('portLevelSettings') ?? []) {
      const portR = p.map('port', { required: true });
      const port = portR?.int('number', { required: true, min: 1, max: 65535 });
      portR?.done();
      const { portLevel: _pl, ...policy } = readTrafficPolicy(p, false) ?? { portLevel: [] };
      if (port !== undefined) out.portLevel.push({ port, policy });
    }
  }
  r.unsupported(['tunnel', 'proxyProtocol', 'retryBudget']);
  r.done(); // for port-level settings the caller has read `port` already
  return out;
}

const FILE = /^\/\S+$/;

/**
 * SIMPLE / MUTUAL: TLS origination with files on the proxy's host (Envoy reads them; never from Git), or with a
 * credential the control plane serves over SDS (`credentialName`: a directory under `serve --credentials-dir`).
 */
function readOrigination(tls: MapReader, mode: 'SIMPLE' | 'MUTUAL'): TlsOrigination | undefined {
  const file = (k: string) => tls.str(k, { pattern: FILE, patternHint: 'an absolute path on the proxy host' });
  const sni = tls.str('sni');
  const caCertificates = file('caCertificates');
  const clientCertificate = file('clientCertificate');
  const privateKey = file('privateKey');
  const subjectAltNames = (tls.strList('subjectAltNames') ?? []).map((x) => x.value);
  const insecureSkipVerify = tls.bool('insecureSkipVerify') ?? false;
  const patternHint = 'a directory name (lower-case letters, digits, -, _, .)';
  const credentialName = tls.str('credentialName', { pattern: CREDENTIAL_NAME, patternHint });
  const common = { mode, subjectAltNames, insecureSkipVerify, ...(sni !== undefined ? { sni } : {}) };
  if (insecureSkipVerify && (caCertificates || subjectAltNames.length > 0)) {
    tls.report('CH0204', 'insecureSkipVerify', 'cannot be combined with caCertificates or subjectAltNames');
  }
  if (credentialName !== undefined) {
    // Istio: "Only one of client certificates and CA certificate or credentialName can be specified."
    const files = (['caCertificates', 'clientCertificate', 'privateKey'] as const).filter((k) => tls.has(k));
    for (const k of files) tls.report('CH0204', k, 'cannot be combined with credentialName, which holds the files');
    if (files.length > 0) return undefined;
    return {
      ...common,
      credential: { name: credentialName, at: tls.loc('credentialName'), path: tls.sub('credentialName') },
    };
  }
  if (mode === 'MUTUAL' && (!clientCertificate || !privateKey)) {
    tls.report(
      'CH0203',
      clientCertificate ? 'privateKey' : 'clientCertificate',
      'MUTUAL needs clientCertificate and privateKey, or a credentialName holding them',
    );
    return undefined;
  }
  if (mode === 'SIMPLE' && (clientCertificate || privateKey)) {
    tls.report('CH0204', clientCertificate ? 'clientCertificate' : 'privateKey', 'only applies to MUTUAL');
  }
  return {
    ...common,
    ...(caCertificates ? { caCertificates } : {}),
    ...(clientCertificate ? { clientCertificate } : {}),
    ...(privateKey ? { privateKey } : {}),
  };
}

export function decodeDestinationRule(spec: MapReader | undefined): DestinationRuleSpec | undefined {
  if (!spec) return undefined;
  const host = spec.str('host', { required: true });
  const hostAt = spec.loc('host');
  const trafficPolicy = readTrafficPolicy(spec.map('trafficPolicy'));
  const subsets: Subset[] = [];
  const names = new Set<string>();
  for (const s of spec.maps('subsets') ?? []) {
    const name = s.str('name', { required: true, pattern: DNS_LABEL, patternHint: 'a DNS label' });
    const labels = s.strMap('labels') ?? {};
    const tp = readTrafficPolicy(s.map('trafficPolicy'));
    s.done();
    if (!name) continue;
    if (names.has(name)) s.report('CH0401', 'name', `subset "${name}" is defined twice`);
    names.add(name);
    subsets.push({ name, labels, at: s.at, ...(tp ? { trafficPolicy: tp } : {}) });
  }
  spec.unsupported(['exportTo', 'workloadSelector']);
  spec.done();
  if (host === undefined) return undefined;
  return { host: { value: host, at: hostAt }, subsets, ...(trafficPolicy ? { trafficPolicy } : {}) };
}
