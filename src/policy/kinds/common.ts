/**
 * Stage: decode. Field decoders shared by several kinds (ports, selectors, addresses).
 */
import { isIP } from 'node:net';
import type { MapReader } from '../reader.js';
import { PROTOCOLS, type Protocol, type ServicePort, type SidecarPort } from '../types.js';

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_NAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Whether host `a` is covered by `b` (Istio's host.Name SubsetOf: `*.x` covers `y.x`, `*` covers all). */
export function hostSubsetOf(a: string, b: string): boolean {
  if (b === '*') return true;
  if (a.startsWith('*')) return b.startsWith('*') && a.length >= b.length && a.slice(1).endsWith(b.slice(1));
  return b.startsWith('*') ? a.endsWith(b.slice(1)) : a === b;
}

/**
 * Protocol names accepted as Istio does (case-insensitive), mapped onto the ones Chancery handles; Istio treats
 * MONGO, MYSQL and REDIS as TCP unless their (off by default) protocol filters are enabled.
 */
const PROTOCOL_ALIASES: Record<string, Protocol> = {
  HTTP: 'HTTP',
  HTTP2: 'HTTP2',
  GRPC: 'GRPC',
  TCP: 'TCP',
  HTTPS: 'HTTPS',
  TLS: 'TLS',
  MONGO: 'TCP',
  MYSQL: 'TCP',
  REDIS: 'TCP',
};

export function readProtocol(r: MapReader, key: string, required: boolean): Protocol | undefined {
  const s = r.str(key, { required });
  if (s === undefined) return undefined;
  const p = PROTOCOL_ALIASES[s.toUpperCase()];
  if (!p) {
    r.report('CH0204', key, `protocol "${s}" is not supported (use one of ${PROTOCOLS.join(', ')})`);
    return undefined;
  }
  return p;
}

export function readServicePort(r: MapReader): ServicePort | undefined {
  const number = r.int('number', { required: true, min: 1, max: 65535 });
  const protocol = readProtocol(r, 'protocol', false) ?? 'TCP';
  const name = r.str('name', {
    required: true,
    pattern: DNS_LABEL,
    patternHint: 'a DNS label (lower-case letters, digits, -)',
  });
  const targetPort = r.int('targetPort', { min: 1, max: 65535 });
  r.done();
  if (number === undefined || name === undefined) return undefined;
  return { number, protocol, name, ...(targetPort !== undefined ? { targetPort } : {}) };
}

export function readSidecarPort(r: MapReader): SidecarPort | undefined {
  const number = r.int('number', { required: true, min: 1, max: 65535 });
  const protocol = readProtocol(r, 'protocol', false) ?? 'HTTP';
  const name = r.str('name');
  r.unsupported(['targetPort']);
  r.done();
  if (number === undefined) return undefined;
  return { number, protocol, ...(name !== undefined ? { name } : {}) };
}

/** `workloadSelector: {labels: {...}}` or `selector: {matchLabels: {...}}`. */
export function readLabelSelector(
  r: MapReader,
  key: string,
  labelsKey: 'labels' | 'matchLabels',
): Record<string, string> | undefined {
  const sel = r.map(key);
  if (!sel) return undefined;
  const labels = sel.strMap(labelsKey) ?? {};
  sel.done();
  return labels;
}

export function readIpAddress(r: MapReader, key: string, required: boolean): string | undefined {
  const s = r.str(key, { required });
  if (s === undefined) return undefined;
  if (isIP(s) === 0) {
    r.report('CH0204', key, `"${s}" is not an IP address (DNS names and unix sockets are not supported here yet)`);
    return undefined;
  }
  return s;
}

/** Parses `127.0.0.1:8080` (IPv4 only for now). */
export function readHostPort(
  r: MapReader,
  key: string,
  required: boolean,
): { address: string; port: number } | undefined {
  const s = r.str(key, { required });
  if (s === undefined) return undefined;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : 0;
  if (!m || isIP(m[1]) !== 4 || port < 1 || port > 65535) {
    r.report('CH0204', key, `"${s}" is not an address:port such as 127.0.0.1:8080`);
    return undefined;
  }
  return { address: m[1], port };
}
