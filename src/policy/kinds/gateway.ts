/**
 * Stage: decode. `networking.istio.io` Gateway: HTTP and HTTPS servers of standalone gateway Envoys. Istio's
 * validation rules (pkg/config/validation ValidateGateway), stricter where Istio would ignore a field with a warning:
 * here every field either takes effect or is an error. HTTP(S) servers route with http routes; TCP servers, and TLS
 * servers that terminate, with tcp routes; PASSTHROUGH servers by SNI with tls routes.
 */
import type { Origin } from '../../diag/diagnostic.js';
import {
  GATEWAY_PROTOCOLS,
  TLS_VERSIONS,
  type GatewayHost,
  type GatewayProtocol,
  type GatewayServer,
  type GatewaySpec,
  type CredentialTls,
  type MeshTls,
  type ServerTls,
  type TlsVersion,
} from '../gateway-types.js';
import type { MapReader } from '../reader.js';
import { DNS_LABEL, DNS_NAME, readIpAddress } from './common.js';

/** Cipher suites Istio accepts in `tls.cipherSuites` (pkg/config/security ValidCipherSuites), BoringSSL names. */
export const CIPHER_SUITES: ReadonlySet<string> = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-RSA-AES256-SHA',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA',
  'AES256-SHA',
  'DES-CBC3-SHA',
]);

/** A credential is a directory name under --credentials-dir: no separators, no dot segments. */
export const CREDENTIAL_NAME = /^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/;

const NOT_YET: Record<string, string> = {
  'GRPC-WEB': 'GRPC-WEB is not supported yet; use GRPC or HTTP2',
};

function readPort(r: MapReader): GatewayServer['port'] | undefined {
  const number = r.int('number', { required: true, min: 1, max: 65535 });
  const name = r.str('name', { required: true, pattern: DNS_LABEL, patternHint: 'a DNS label' });
  const raw = r.str('protocol', { required: true });
  r.unsupported(['targetPort'], 'has no effect on gateways (Istio ignores it); remove it');
  r.done();
  let protocol: GatewayProtocol | undefined;
  if (raw !== undefined) {
    const upper = raw.toUpperCase();
    protocol = (GATEWAY_PROTOCOLS as readonly string[]).includes(upper) ? (upper as GatewayProtocol) : undefined;
    if (!protocol && NOT_YET[upper]) r.report('CH0205', 'protocol', NOT_YET[upper]);
    else if (!protocol) r.report('CH0204', 'protocol', `"${raw}" is not one of ${GATEWAY_PROTOCOLS.join(', ')}`);
  }
  if (number === undefined || name === undefined || !protocol) return undefined;
  return { number, name, protocol };
}

/** `namespace/host` or `host` (any namespace); `.` is the Gateway's namespace. */
function readHosts(r: MapReader, gatewayNamespace: string): GatewayHost[] {
  const out: GatewayHost[] = [];
  (r.strList('hosts', { required: true, nonEmpty: true }) ?? []).forEach((h, i) => {
    const slash = h.value.indexOf('/');
    const ns = slash >= 0 ? h.value.slice(0, slash) : '*';
    const host = (slash >= 0 ? h.value.slice(slash + 1) : h.value).toLowerCase();
    const nsOk = ns === '*' || ns === '.' || DNS_LABEL.test(ns);
    if (!nsOk || !(host === '*' || DNS_NAME.test(host))) {
      const path = `${r.sub('hosts')}[${i}]`;
      const examples = '"*", "shop.example.com", "shop/*.example.com"';
      const message = `${path}: "${h.value}" is not [namespace/]host (examples: ${examples})`;
      r.ctx.diags.report('CH0204', message, { location: h.at, path, object: r.ctx.object });
      return;
    }
    out.push({ namespace: ns === '.' ? gatewayNamespace : ns, host, at: h.at });
  });
  return out;
}

function readVersion(r: MapReader, key: string): TlsVersion | undefined {
  return r.str(key, { oneOf: TLS_VERSIONS }) as TlsVersion | undefined;
}

function values(r: MapReader, key: string): string[] {
  return (r.strList(key) ?? []).map((x) => x.value);
}

function readCiphers(r: MapReader): string[] {
  const list = r.strList('cipherSuites') ?? [];
  const seen = new Set<string>();
  list.forEach((c, i) => {
    const path = `${r.sub('cipherSuites')}[${i}]`;
    // Istio ignores unknown and repeated suites with a warning; an ignored line of policy is an error here.
    const why = !CIPHER_SUITES.has(c.value)
      ? `"${c.value}" is not a cipher suite Envoy's gateways support`
      : seen.has(c.value)
        ? `"${c.value}" is listed twice`
        : undefined;
    if (why) r.ctx.diags.report('CH0204', `${path}: ${why}`, { location: c.at, path, object: r.ctx.object });
    seen.add(c.value);
  });
  return [...seen];
}

interface TlsParams {
  minProtocolVersion?: TlsVersion;
  maxProtocolVersion?: TlsVersion;
  cipherSuites: string[];
}

/** Protocol versions and cipher suites, which every terminating mode takes. */
function readParams(r: MapReader): TlsParams {
  const minProtocolVersion = readVersion(r, 'minProtocolVersion');
  const maxProtocolVersion = readVersion(r, 'maxProtocolVersion');
  const order = (v?: TlsVersion) => (v === undefined || v === 'TLS_AUTO' ? undefined : TLS_VERSIONS.indexOf(v));
  const [lo, hi] = [order(minProtocolVersion), order(maxProtocolVersion)];
  if (lo !== undefined && hi !== undefined && lo > hi) {
    r.report('CH0204', 'maxProtocolVersion', `is below minProtocolVersion ${minProtocolVersion}`);
  }
  return {
    ...(minProtocolVersion ? { minProtocolVersion } : {}),
    ...(maxProtocolVersion ? { maxProtocolVersion } : {}),
    cipherSuites: readCiphers(r),
  };
}

/** The TLS a terminating server uses; reports what it cannot honour. */
function readServerTls(r: MapReader, mode: CredentialTls['mode']): CredentialTls | undefined {
  const patternHint = 'a directory name (lower-case letters, digits, -, _, .)';
  const credentialName = r.str('credentialName', { required: true, pattern: CREDENTIAL_NAME, patternHint });
  const params = readParams(r);
  const subjectAltNames = values(r, 'subjectAltNames');
  const verifyCertificateSpki = values(r, 'verifyCertificateSpki');
  const verifyCertificateHash = values(r, 'verifyCertificateHash');
  for (const key of ['subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash']) {
    if (mode !== 'SIMPLE' || !r.has(key)) continue;
    r.report('CH0204', key, 'checks client certificates, which SIMPLE TLS does not ask for; use MUTUAL');
  }
  const files = 'names files on the gateway machine; use credentialName (a directory under serve --credentials-dir)';
  r.unsupported(['serverCertificate', 'privateKey', 'caCertificates'], files);
  r.unsupported(['credentialNames', 'tlsCertificates', 'caCrl']);
  if (credentialName === undefined) return undefined;
  return {
    mode,
    credentialName,
    ...params,
    subjectAltNames,
    verifyCertificateSpki,
    verifyCertificateHash,
    at: r.at,
    credentialAt: r.loc('credentialName'),
  };
}

/** ISTIO_MUTUAL: the gateway's own SVID; certificates of any other source contradict it (Istio rejects them too). */
function readMeshTls(r: MapReader): MeshTls {
  const params = readParams(r);
  const own = ['credentialName', 'credentialNames', 'serverCertificate', 'privateKey', 'caCertificates'];
  for (const k of [...own, 'tlsCertificates', 'caCrl'].filter((x) => r.has(x))) {
    r.raw(k);
    r.report('CH0204', k, "ISTIO_MUTUAL terminates with the gateway's own mesh certificate and the mesh's CA");
  }
  const authz = 'is not supported on ISTIO_MUTUAL servers; allow callers with an AuthorizationPolicy (principals)';
  r.unsupported(['subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash'], authz);
  return { mode: 'ISTIO_MUTUAL', ...params, at: r.at };
}

const MODES = ['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL', 'PASSTHROUGH', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL'];

interface ReadTls {
  tls?: ServerTls;
  passthrough?: true;
  httpsRedirect: boolean;
}

/** `tls` of a plaintext server: HTTP may only set httpsRedirect (Istio's rule), TCP nothing. */
function readPlaintextTls(r: MapReader, protocol?: GatewayProtocol): ReadTls {
  const http = protocol !== 'TCP';
  const httpsRedirect = http ? (r.bool('httpsRedirect') ?? false) : false;
  for (const k of r.keys().filter((x) => !http || x !== 'httpsRedirect')) {
    r.raw(k);
    const why = http
      ? `a plaintext ${protocol ?? 'HTTP'} server's tls may only set httpsRedirect`
      : 'a TCP server has no TLS; use protocol TLS to terminate or pass TLS through';
    r.report('CH0204', k, why);
  }
  r.done();
  return { httpsRedirect };
}

/**
 * `tls` of a server: termination (SIMPLE, MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL) or PASSTHROUGH for HTTPS and TLS
 * servers, where a `tls` without mode is PASSTHROUGH (Istio's default); only `httpsRedirect` for plaintext HTTP.
 */
function readTls(r: MapReader | undefined, protocol?: GatewayProtocol): ReadTls {
  if (!r) return { httpsRedirect: false };
  if (protocol !== 'HTTPS' && protocol !== 'TLS') return readPlaintextTls(r, protocol);
  if (r.bool('httpsRedirect')) {
    r.report('CH0204', 'httpsRedirect', `redirects plaintext requests to https; a ${protocol} server receives none`);
  }
  const mode = r.str('mode', { oneOf: MODES }) ?? (r.has('mode') ? undefined : 'PASSTHROUGH');
  let out: ReadTls = { httpsRedirect: false };
  if (mode === 'PASSTHROUGH') {
    // Istio ignores certificates here with a warning; an ignored line of policy is an error here.
    for (const k of r.keys().filter((x) => x !== 'mode' && x !== 'httpsRedirect')) {
      r.raw(k);
      r.report('CH0204', k, 'PASSTHROUGH does not terminate TLS (tls routes forward it by SNI); remove it');
    }
    out = { passthrough: true, httpsRedirect: false };
  } else if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    const tls = readServerTls(r, mode);
    if (tls) out = { tls, httpsRedirect: false };
  } else if (mode === 'ISTIO_MUTUAL') {
    out = { tls: readMeshTls(r), httpsRedirect: false };
  } else if (mode === 'AUTO_PASSTHROUGH') {
    const why = 'AUTO_PASSTHROUGH (SNI-DNAT to any mesh cluster, for multi-network meshes) is not supported';
    r.report('CH0205', 'mode', `${why}; use PASSTHROUGH with VirtualService tls routes`);
  }
  if (!out.tls && !out.passthrough) for (const k of r.keys()) r.raw(k); // refused: its other fields mean nothing
  r.done();
  return out;
}

function readServer(r: MapReader, gatewayNamespace: string): GatewayServer | undefined {
  const portR = r.map('port', { required: true });
  const port = portR ? readPort(portR) : undefined;
  const hosts = readHosts(r, gatewayNamespace);
  const tlsR = r.map('tls');
  const { tls, passthrough, httpsRedirect } = readTls(tlsR, port?.protocol);
  const secure = port?.protocol === 'HTTPS' || port?.protocol === 'TLS';
  if (secure && !tlsR) {
    const modes = 'mode SIMPLE or MUTUAL with a credentialName, ISTIO_MUTUAL, or PASSTHROUGH';
    r.report('CH0203', 'tls', `an ${port.protocol} server needs tls (${modes})`);
  }
  const bind = readIpAddress(r, 'bind', false);
  const name = r.str('name');
  r.unsupported(['defaultEndpoint']);
  r.done();
  if (!port || hosts.length === 0 || (secure && !tls && !passthrough)) return undefined;
  const optional = {
    ...(tls ? { tls } : {}),
    ...(passthrough ? { passthrough } : {}),
    ...(bind ? { bind } : {}),
    ...(name ? { name } : {}),
  };
  return { port, hosts, httpsRedirect, at: r.at, ...optional };
}

export function decodeGateway(
  spec: MapReader | undefined,
  at: Record<string, Origin>,
  namespace: string,
): GatewaySpec | undefined {
  if (!spec) return undefined;
  const sel = spec.strMap('selector');
  // Istio picks every gateway pod with an empty selector; here every workload would become a gateway.
  if (!sel || Object.keys(sel).length === 0) {
    spec.report('CH0203', 'selector', 'needs labels of the gateway workloads (e.g. istio: ingressgateway)');
  }
  if (spec.has('selector')) at['spec.selector'] = spec.loc('selector');
  const readers = spec.maps('servers', { required: true, nonEmpty: true }) ?? [];
  const servers: GatewayServer[] = [];
  const names = new Map<string, number>();
  readers.forEach((r, i) => {
    const s = readServer(r, namespace);
    if (!s) return;
    const prev = names.get(s.port.name);
    if (prev !== undefined) {
      const path = `spec.servers[${i}].port.name`;
      const message = `${path}: "${s.port.name}" is also servers[${prev}]'s; port names must be unique`;
      r.ctx.diags.report('CH0204', message, { location: s.at, path, object: r.ctx.object });
    }
    names.set(s.port.name, i);
    servers.push(s);
  });
  spec.done();
  if (!sel || Object.keys(sel).length === 0) return undefined;
  return { selector: sel, servers };
}
