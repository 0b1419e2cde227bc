/**
 * Stage: model. Records which parts of the model a computation read, as dependency keys, so that a proxy compiled
 * for one revision can be reused in the next when none of those parts changed (see ir/dependencies.ts, which
 * gives each key its value). The model's accessors call `track`; outside `recording` it does nothing.
 *
 * Keys: `mesh`; `wl:<id>` a workload; `svc:<host>` a service (or its absence), `svchead:<host>` the same without
 * its endpoints; `svcs:<ns>` / `svcs:*` the services
 * of a namespace / of the mesh (wildcard egress); `vs:<host>`, `dr:<host>`; `cl:<cluster id>` a shared outbound
 * cluster; `gwvs:<ns/name>` the VirtualServices bound to a Gateway; and per workload the policies selected for it:
 * `mtls:`, `authz:`, `reqauthn:`, `rl:`, `tel:`, `gw:<id>` (the Gateways selecting it).
 */
let current: Set<string> | undefined;

export function track(key: string): void {
  current?.add(key);
}

/** Runs `fn`, returning what it computed and every key it read. */
export function recording<T>(fn: () => T): { value: T; keys: Set<string> } {
  const outer = current;
  const keys = new Set<string>();
  current = keys;
  try {
    return { value: fn(), keys };
  } finally {
    current = outer;
  }
}

/** Runs `fn` without recording: for values shared between proxies, which are tracked as one key of their own. */
export function untracked<T>(fn: () => T): T {
  const outer = current;
  current = undefined;
  try {
    return fn();
  } finally {
    current = outer;
  }
}
