/**
 * Wiring: the control plane's metrics, from its ADS server's stream events and state (pushes, ACK latency,
 * connected and in-sync proxies, certificate expiry, refused and stale requests). Observes; changes nothing.
 */
import type { AdsServer } from '../server/ads-server.js';
import { SHORT_NAME } from '../xds/type-urls.js';
import type { Telemetry } from './telemetry.js';

export function instrument(o: {
  ads: AdsServer;
  telemetry: Telemetry;
  /** The current revision, if any. */
  revision: () => string | undefined;
  certificates: () => { notAfter: string }[];
  now: () => number;
}): void {
  const t = o.telemetry;
  const sentAt = new Map<string, number>();
  o.ads.observers.push((proxy, e) => {
    const type = SHORT_NAME[e.typeUrl];
    const key = `${proxy}|${type}|${e.nonce}`;
    if (e.kind === 'sent') {
      t.pushes.add(1, { type });
      t.pushBytes.add(e.bytes ?? 0, { type });
      if (sentAt.size > 100_000) sentAt.clear(); // bound: entries of vanished streams
      sentAt.set(key, performance.now());
    } else if (e.kind === 'ack' || e.kind === 'nack') {
      const start = sentAt.get(key);
      sentAt.delete(key);
      if (start !== undefined) t.ackLatency.record((performance.now() - start) / 1000, { type, result: e.kind });
      if (e.kind === 'ack') t.acks.add(1, { type });
      else t.nacks.add(1, { type, proxy });
    }
  });
  t.observe('chancery_connected_proxies', 'proxies with an open xDS stream', () => [
    { value: o.ads.registry.all().filter((p) => p.connected).length },
  ]);
  t.observe('chancery_proxies_in_sync', 'connected proxies holding the current revision completely', () => {
    const rev = o.revision();
    return [{ value: o.ads.registry.all().filter((p) => p.connected && p.revision === rev).length }];
  });
  t.observe('chancery_certificate_expiry_seconds', 'seconds until the soonest workload certificate expires', () => {
    const list = o.certificates();
    if (list.length === 0) return [];
    return [{ value: Math.min(...list.map((c) => (Date.parse(c.notAfter) - o.now()) / 1000)) }];
  });
  t.observe('chancery_xds_streams_refused_total', 'xDS streams refused (rate limit, auth, malformed)', () => [
    { value: o.ads.counters.streamsRejected, attributes: { reason: 'rate_limited' } },
    { value: o.ads.counters.malformed, attributes: { reason: 'malformed' } },
    { value: o.ads.counters.unauthenticated, attributes: { reason: 'unauthenticated' } },
  ]);
  t.observe('chancery_xds_stale_requests_total', 'requests ignored because their nonce was stale', () => [
    { value: o.ads.counters.staleRequests },
  ]);
}
