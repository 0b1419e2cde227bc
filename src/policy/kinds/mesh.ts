/**
 * Stage: decode. `chancery.dev/v1alpha1` Mesh: mesh-wide settings, at most one per repository.
 */
import type { MapReader } from '../reader.js';
import {
  MESH_DEFAULTS,
  PATH_NORMALIZATIONS,
  type ExtensionProvider,
  type MeshSpec,
  type MtlsMode,
  type PathNormalization,
} from '../types.js';
import { DNS_NAME } from './common.js';
import { decodeExtAuthzGrpc, decodeExtAuthzHttp } from './ext-authz-provider.js';
import { MAX_INSTANCES } from './workload-group.js';

const DNS_LABEL_OR_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function decodeMesh(spec: MapReader | undefined): MeshSpec {
  const out: MeshSpec = { ...MESH_DEFAULTS, trustDomainAliases: [], extensionProviders: [] };
  if (!spec) return out;
  out.trustDomain = spec.str('trustDomain', { pattern: DNS_NAME, patternHint: 'a DNS name' }) ?? out.trustDomain;
  out.rootNamespace = spec.str('rootNamespace') ?? out.rootNamespace;
  const aliases = spec.strList('trustDomainAliases') ?? [];
  for (const [i, a] of aliases.entries()) {
    if (!DNS_NAME.test(a.value)) spec.report('CH0204', `trustDomainAliases[${i}]`, `"${a.value}" is not a DNS name`);
  }
  out.trustDomainAliases = [...new Set(aliases.map((a) => a.value))].filter((a) => a !== out.trustDomain);
  const pn = spec.map('pathNormalization');
  if (pn) {
    out.pathNormalization =
      (pn.str('normalization', { oneOf: PATH_NORMALIZATIONS }) as PathNormalization | undefined) ??
      out.pathNormalization;
    pn.done();
  }
  const topology = spec.map('gatewayTopology');
  if (topology) {
    out.numTrustedProxies = topology.int('numTrustedProxies', { min: 0, max: 16 }) ?? out.numTrustedProxies;
    topology.unsupported(['forwardClientCertDetails', 'proxyProtocol'], 'is not supported by Chancery yet');
    topology.done();
  }
  const mtls = spec.map('mtls');
  if (mtls) {
    out.mtlsMode =
      (mtls.str('mode', { oneOf: ['STRICT', 'PERMISSIVE', 'DISABLE'] }) as MtlsMode | undefined) ?? out.mtlsMode;
    mtls.done();
  }
  const authz = spec.map('authorization');
  if (authz) {
    out.authorizationDefault =
      (authz.str('default', { oneOf: ['DENY', 'ALLOW'] }) as 'DENY' | 'ALLOW' | undefined) ?? out.authorizationDefault;
    authz.done();
  }
  const certs = spec.map('certificates');
  if (certs) {
    out.certificateTtlMs = certs.duration('ttl', { minMs: 60_000, maxMs: 90 * 24 * 3_600_000 }) ?? out.certificateTtlMs;
    out.rotateAtFraction = certs.num('rotateAt', { min: 0.1, max: 0.9 }) ?? out.rotateAtFraction;
    certs.done();
  }
  const xds = spec.map('xds');
  if (xds) {
    const debounce = xds.map('debounce');
    if (debounce) {
      out.debounceQuietMs = debounce.duration('quiet', { minMs: 0, maxMs: 60_000 }) ?? out.debounceQuietMs;
      out.debounceMaxMs = debounce.duration('max', { minMs: 0, maxMs: 600_000 }) ?? out.debounceMaxMs;
      debounce.done();
    }
    xds.done();
  }
  const registration = spec.map('registration');
  if (registration) {
    const max = registration.int('maxInstances', { min: 1, max: MAX_INSTANCES });
    out.maxInstancesPerGroup = max ?? out.maxInstancesPerGroup;
    registration.done();
  }
  const providers = spec.maps('extensionProviders') ?? [];
  const seen = new Set<string>();
  for (const p of providers) {
    const name = p.str('name', {
      required: true,
      pattern: DNS_LABEL_OR_NAME,
      patternHint: 'a name (letters, digits, -, .)',
    });
    if (name !== undefined && seen.has(name)) p.report('CH0204', 'name', `"${name}" is already the name of a provider`);
    if (name !== undefined) seen.add(name);
    const provider = decodeProvider(p, name);
    if (provider) out.extensionProviders.push(provider);
    p.done();
  }
  spec.unsupported(['telemetry'], 'is not a Mesh field; use a Telemetry resource');
  spec.done();
  return out;
}

const PROVIDER_KINDS = ['opentelemetry', 'envoyFileAccessLog', 'envoyExtAuthzHttp', 'envoyExtAuthzGrpc'] as const;

/** One provider entry: exactly one of the kinds Chancery implements. */
function decodeProvider(p: MapReader, name: string | undefined): ExtensionProvider | undefined {
  const present = PROVIDER_KINDS.filter((k) => p.has(k));
  if (present.length === 0) {
    p.report('CH0203', undefined, `a provider needs one of ${PROVIDER_KINDS.join(', ')}`);
    return undefined;
  }
  if (present.length > 1) p.report('CH0204', present[1], `a provider is only one of ${present.join(', ')}`);
  const kind = present[0];
  const r = p.map(kind);
  for (const other of present.slice(1)) p.map(other);
  if (!r) return undefined;
  if (kind === 'envoyExtAuthzHttp' || kind === 'envoyExtAuthzGrpc') {
    // Decoded even without a valid name, so that every mistake in it is reported at once.
    const x = (kind === 'envoyExtAuthzHttp' ? decodeExtAuthzHttp : decodeExtAuthzGrpc)(r, name ?? '', p.at);
    return name !== undefined ? x : undefined;
  }
  if (kind === 'opentelemetry') {
    const service = r.str('service', { required: true, pattern: DNS_NAME, patternHint: 'a host name' });
    const port = r.int('port', { required: true, min: 1, max: 65535 });
    r.done();
    return name && service && port ? { name, kind: 'opentelemetry', service, port } : undefined;
  }
  const path = r.str('path', { required: true, pattern: /^\/\S+$/, patternHint: 'an absolute path' });
  r.done();
  return name && path ? { name, kind: 'file', path } : undefined;
}
