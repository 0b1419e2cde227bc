/**
 * Stage: decode. `networking.istio.io` Gateway: HTTP and HTTPS servers of standalone gateway Envoys. Istio's
 * validation rules (pkg/config/validation ValidateGateway), stricter where Istio would ignore a field with a warning:
 * here every field either takes effect or is an error. TLS passthrough and TCP servers are rejected for now.
 */
import type { Origin } from '../../diag/diagnostic.js';
import {
  GATEWAY_PROTOCOLS,
  TLS_VERSIONS,
  type GatewayHost,
  type GatewayProtocol,
  type GatewayServer,
  type GatewaySpec,
  type ServerTls,
  type TlsVersion,
} from '../gateway-types.js';
import type { MapReader } from '../reader.js';
import { DNS_LABEL, DNS_NAME, readIpAddress } from './common.js';

/** Cipher suites Istio accepts in `tls.cipherSuites` (pkg/config/security ValidCipherSuites), BoringSSL names. */
export const CIPHER_SUITES: ReadonlySet<string> = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-RSA-AES256-SHA',
  'AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-SHA', 'AES256-SHA', 'DES-CBC3-SHA',
]);

/** A credential is a directory name under --credentials-dir: no separators, no dot segments. */
export const CREDENTIAL_NAME = /^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/;

const NOT_YET: Record<string, string> = {
  TCP: 'TCP gateway servers (tcp routes) are not supported yet',
  TLS: 'TLS gateway servers (tls routes, passthrough) are not supported yet',
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

/** The TLS a terminating server uses; reports what it cannot honour. */
function readServerTls(r: MapReader, mode: ServerTls['mode']): ServerTls | undefined {
  const patternHint = 'a directory name (lower-case letters, digits, -, _, .)';
  const credentialName = r.str('credentialName', { required: true, pattern: CREDENTIAL_NAME, patternHint });
  const minProtocolVersion = readVersion(r, 'minProtocolVersion');
  const maxProtocolVersion = readVersion(r, 'maxProtocolVersion');
  const order = (v?: TlsVersion) => (v === undefined || v === 'TLS_AUTO' ? undefined : TLS_VERSIONS.indexOf(v));
  const [lo, hi] = [order(minProtocolVersion), order(maxProtocolVersion)];
  if (lo !== undefined && hi !== undefined && lo > hi) {
    r.report('CH0204', 'maxProtocolVersion', `is below minProtocolVersion ${minProtocolVersion}`);
  }
  const cipherSuites = readCiphers(r);
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
    ...(minProtocolVersion ? { minProtocolVersion } : {}),
    ...(maxProtocolVersion ? { maxProtocolVersion } : {}),
    cipherSuites,
    subjectAltNames,
    verifyCertificateSpki,
    verifyCertificateHash,
    at: r.at,
    credentialAt: r.loc('credentialName'),
  };
}

const MODES = ['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL', 'PASSTHROUGH', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL'];

/** `tls` of a server: termination for HTTPS, only `httpsRedirect` for plaintext HTTP (Istio's rule). */
function readTls(r: MapReader | undefined, protocol?: GatewayProtocol): { tls?: ServerTls; httpsRedirect: boolean } {
  if (!r) return { httpsRedirect: false };
  const httpsRedirect = r.bool('httpsRedirect') ?? false;
  if (protocol !== 'HTTPS') {
    for (const k of r.keys().filter((x) => x !== 'httpsRedirect')) {
      r.raw(k);
      r.report('CH0204', k, `a plaintext ${protocol ?? 'HTTP'} server's tls may only set httpsRedirect`);
    }
    r.done();
    return { httpsRedirect };
  }
  if (httpsRedirect) {
    r.report('CH0204', 'httpsRedirect', 'redirects plaintext requests to https; an HTTPS server receives none');
  }
  const mode = r.str('mode', { oneOf: MODES });
  let tls: ServerTls | undefined;
  if (!r.has('mode')) {
    const unset = 'mode is not set, which in Istio means PASSTHROUGH (not supported yet)';
    r.report('CH0205', undefined, `${unset}; set mode: SIMPLE or MUTUAL to terminate TLS`);
  } else if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    tls = readServerTls(r, mode);
  } else if (mode) {
    const why = mode === 'ISTIO_MUTUAL'
      ? 'mesh mTLS on a gateway server is not supported yet'
      : 'TLS passthrough is not supported yet';
    r.report('CH0205', 'mode', `${mode}: ${why}; use SIMPLE or MUTUAL with a credentialName`);
  }
  if (!tls) for (const k of r.keys()) r.raw(k); // the mode was refused: its other fields mean nothing yet
  r.done();
  return { ...(tls ? { tls } : {}), httpsRedirect: false };
}

function readServer(r: MapReader, gatewayNamespace: string): GatewayServer | undefined {
  const portR = r.map('port', { required: true });
  const port = portR ? readPort(portR) : undefined;
  const hosts = readHosts(r, gatewayNamespace);
  const tlsR = r.map('tls');
  const { tls, httpsRedirect } = readTls(tlsR, port?.protocol);
  if (port?.protocol === 'HTTPS' && !tlsR) {
    r.report('CH0203', 'tls', 'an HTTPS server needs tls (mode SIMPLE or MUTUAL with a credentialName)');
  }
  const bind = readIpAddress(r, 'bind', false);
  const name = r.str('name');
  r.unsupported(['defaultEndpoint']);
  r.done();
  if (!port || hosts.length === 0 || (port.protocol === 'HTTPS' && !tls)) return undefined;
  const optional = { ...(tls ? { tls } : {}), ...(bind ? { bind } : {}), ...(name ? { name } : {}) };
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
