/**
 * Stage: decode. `networking.istio.io` VirtualService, HTTP routes: matches, weighted destinations (subsets),
 * retries, timeouts, fault injection, mirroring, rewrites, header operations, redirects and direct responses; tcp
 * and tls routes are read by virtual-service-tcp.ts and virtual-service-tls.ts.
 */
import type { MapReader } from '../reader.js';
import type { HttpMatch, HttpRoute, VirtualServiceSpec } from '../traffic-types.js';
import { readDestination, readGateways, readHeaderOps, readPercent, readStringMatch } from './traffic-common.js';
import { readTcpRoutes } from './virtual-service-tcp.js';
import { readTlsRoutes } from './virtual-service-tls.js';

function readMatch(m: MapReader): HttpMatch {
  const out: HttpMatch = { headers: [], queryParams: [], at: m.at };
  const uri = readStringMatch(m.map('uri'));
  if (uri) out.uri = uri;
  const method = readStringMatch(m.map('method'));
  if (method) out.method = method;
  const authority = readStringMatch(m.map('authority'));
  if (authority) out.authority = authority;
  for (const [key, list] of [
    ['headers', out.headers],
    ['queryParams', out.queryParams],
  ] as const) {
    const h = m.map(key);
    for (const name of h?.keys() ?? []) {
      const sm = h!.map(name);
      // `{}` means "present"; otherwise a StringMatch.
      const match = sm && sm.keys().length > 0 ? readStringMatch(sm) : (sm?.done(), undefined);
      list.push({ name: key === 'headers' ? name.toLowerCase() : name, ...(match ? { match } : {}) });
    }
    h?.done();
  }
  const port = m.int('port', { min: 1, max: 65535 });
  if (port !== undefined) out.port = port;
  const sourceLabels = m.strMap('sourceLabels');
  if (sourceLabels) out.sourceLabels = sourceLabels;
  if (m.has('gateways')) out.gateways = readGateways(m);
  m.str('name');
  m.unsupported(['scheme', 'ignoreUriCase', 'withoutHeaders', 'sourceNamespace', 'statPrefix']);
  m.done();
  return out;
}

function readRoute(r: MapReader): HttpRoute | undefined {
  const out: HttpRoute = { match: [], route: [], headers: readHeaderOps(r.map('headers')), at: r.at };
  const name = r.str('name');
  if (name) out.name = name;
  out.match = (r.maps('match') ?? []).map(readMatch);
  const dests = r.maps('route') ?? [];
  const many = dests.length > 1;
  const parsed = dests.map((d) => readDestination(d, false));
  const given = parsed.filter((d) => d?.weight !== undefined);
  if (many && given.length > 0 && given.length < parsed.length)
    r.report('CH0204', 'route', 'give every destination a weight, or none');
  const total = given.reduce((n, d) => n + (d!.weight ?? 0), 0);
  if (given.length > 0 && total !== 100) {
    r.report('CH0406', 'route', `weights add up to ${total}, not 100`);
  }
  parsed.forEach((d, i) => {
    if (d)
      out.route.push({
        ...d,
        weight: d.weight ?? (many ? Math.floor(100 / parsed.length) + (i < 100 % parsed.length ? 1 : 0) : 100),
      });
  });
  const redirect = r.map('redirect');
  if (redirect) {
    const uri = redirect.str('uri');
    const authority = redirect.str('authority');
    const code = redirect.int('redirectCode', { min: 300, max: 399 }) ?? 301;
    redirect.unsupported(['port', 'derivePort', 'scheme']);
    redirect.done();
    out.redirect = { code, ...(uri ? { uri } : {}), ...(authority ? { authority } : {}) };
  }
  const direct = r.map('directResponse');
  if (direct) {
    const status = direct.int('status', { required: true, min: 200, max: 599 }) ?? 200;
    const body = direct.map('body');
    const text = body?.str('string');
    body?.unsupported(['bytes']);
    body?.done();
    direct.done();
    out.directResponse = { status, ...(text !== undefined ? { body: text } : {}) };
  }
  const actions = [out.route.length > 0, !!out.redirect, !!out.directResponse].filter(Boolean).length;
  if (actions !== 1) r.report('CH0204', undefined, 'a route needs exactly one of route, redirect or directResponse');
  const rewrite = r.map('rewrite');
  if (rewrite) {
    const uri = rewrite.str('uri');
    const authority = rewrite.str('authority');
    rewrite.unsupported(['uriRegexRewrite']);
    rewrite.done();
    out.rewrite = { ...(uri !== undefined ? { uri } : {}), ...(authority !== undefined ? { authority } : {}) };
  }
  const timeout = r.duration('timeout', { minMs: 0 });
  if (timeout !== undefined) out.timeoutMs = timeout;
  const retries = r.map('retries');
  if (retries) {
    const attempts = retries.int('attempts', { required: true, min: 0, max: 100 }) ?? 0;
    const perTry = retries.duration('perTryTimeout', { minMs: 1 });
    const retryOn = retries.str('retryOn', {
      pattern: /^[a-z0-9-]+(,[a-z0-9-]+)*$/,
      patternHint: 'a comma-separated list of Envoy retry conditions (e.g. 5xx,connect-failure)',
    });
    retries.unsupported(['retryRemoteLocalities', 'backoff']);
    retries.done();
    out.retries = {
      attempts,
      ...(perTry !== undefined ? { perTryTimeoutMs: perTry } : {}),
      ...(retryOn ? { retryOn } : {}),
    };
  }
  const fault = r.map('fault');
  if (fault) {
    out.fault = {};
    const delay = fault.map('delay');
    if (delay) {
      const ms = delay.duration('fixedDelay', { required: true, minMs: 0 }) ?? 0;
      const percent = readPercent(delay, 'percentage') ?? 100;
      delay.unsupported(['exponentialDelay', 'percent']);
      delay.done();
      out.fault.delay = { ms, percent };
    }
    const abort = fault.map('abort');
    if (abort) {
      const status = abort.int('httpStatus', { required: true, min: 200, max: 599 }) ?? 500;
      const percent = readPercent(abort, 'percentage') ?? 100;
      abort.unsupported(['grpcStatus', 'http2Error']);
      abort.done();
      out.fault.abort = { status, percent };
    }
    fault.done();
  }
  const mirror = r.map('mirror');
  if (mirror) {
    const host = mirror.str('host', { required: true });
    const subset = mirror.str('subset');
    const portR = mirror.map('port');
    const port = portR?.int('number', { required: true, min: 1, max: 65535 });
    portR?.done();
    mirror.done();
    const percent = readPercent(r, 'mirrorPercentage') ?? 100;
    if (host) out.mirror = { host, percent, at: mirror.at, ...(subset ? { subset } : {}), ...(port ? { port } : {}) };
  } else if (r.has('mirrorPercentage')) {
    r.report('CH0204', 'mirrorPercentage', 'needs mirror');
  }
  r.unsupported(['mirrors', 'corsPolicy', 'delegate']);
  r.done();
  return out;
}

export function decodeVirtualService(spec: MapReader | undefined): VirtualServiceSpec | undefined {
  if (!spec) return undefined;
  const hosts = spec.strList('hosts', { required: true, nonEmpty: true }) ?? [];
  const listed = spec.has('gateways') ? readGateways(spec) : [];
  // Istio: no gateways (or an empty list) means the sidecars, `mesh`.
  const gateways = listed.length > 0 ? listed : [{ value: 'mesh', at: spec.loc('gateways') }];
  const http = (spec.maps('http') ?? []).map(readRoute).filter((r) => r !== undefined);
  const tcp = readTcpRoutes(spec);
  const tls = readTlsRoutes(spec, hosts);
  spec.unsupported(['exportTo'], 'is not supported yet');
  spec.done();
  return { hosts, gateways, http, tcp, tls };
}
