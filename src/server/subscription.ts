/**
 * Stage: server. Subscription rules of the xDS protocol, kept apart from the stream so they can be tested as a table.
 * See the xDS protocol document, "How the client specifies what resources to return" and "Delta xDS".
 */

export interface Subscription {
  /** True once the client asked for this type at all. */
  active: boolean;
  wildcard: boolean;
  names: Set<string>;
  /** Legacy wildcard: first request had no names; later empty lists keep meaning "wildcard". */
  legacyWildcard: boolean;
}

export function emptySubscription(): Subscription {
  return { active: false, wildcard: false, names: new Set(), legacyWildcard: false };
}

/**
 * SotW: every request carries the full list. An empty list in the first request is wildcard (legacy), and stays
 * wildcard while the client keeps sending empty lists. Once a client sent names, an empty list means
 * "unsubscribe from everything of this type" (not wildcard). `*` among names is an explicit wildcard.
 * Returns whether the subscription changed.
 */
export function applySotw(sub: Subscription, names: readonly string[]): boolean {
  const before = describe(sub);
  if (!sub.active) {
    sub.active = true;
    sub.legacyWildcard = names.length === 0;
  } else if (names.length > 0) {
    sub.legacyWildcard = false;
  }
  sub.wildcard = sub.legacyWildcard || names.includes('*');
  sub.names = new Set(names.filter((n) => n !== '*'));
  return describe(sub) !== before;
}

/**
 * Delta: subscriptions change by difference. The first request of a type with nothing to subscribe is a legacy
 * wildcard; `*` subscribes to wildcard explicitly and unsubscribing `*` ends it. Returns whether anything changed.
 */
export function applyDelta(sub: Subscription, subscribe: readonly string[], unsubscribe: readonly string[]): boolean {
  const before = describe(sub);
  if (!sub.active) {
    sub.active = true;
    if (subscribe.length === 0) sub.wildcard = true;
  }
  for (const n of subscribe) {
    if (n === '*') sub.wildcard = true;
    else sub.names.add(n);
  }
  for (const n of unsubscribe) {
    if (n === '*') sub.wildcard = false;
    else sub.names.delete(n);
  }
  return describe(sub) !== before;
}

export function wants(sub: Subscription, name: string): boolean {
  return sub.active && (sub.wildcard || sub.names.has(name));
}

function describe(sub: Subscription): string {
  return `${sub.active}|${sub.wildcard}|${[...sub.names].sort().join(',')}`;
}
