/**
 * The control plane's state directory: what it holds, and opening it. The trust material (workload CA, xDS CA,
 * token key) is created on the first start only, that is when the directory holds none of the files below. Once
 * any exists, every key and CA must be there and valid, or opening fails with an error naming the file: a new CA
 * or key generated over lost state would lock every Envoy out, silently.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Authority, type CaFiles } from '../ca/authority.js';
import type { Clock } from '../ca/clock.js';
import { XdsCa } from '../ca/xds-ca.js';
import { ProxyTokens } from '../server/proxy-auth.js';
import { readStateFile, writeFileAtomic } from '../util/files.js';
import type { Logger } from './logger.js';

/** Files whose presence means "this directory has been used": any of them, and nothing is created any more. */
export const STATE_FILES = [
  'ca/root-cert.pem',
  'ca/root-key.pem',
  'ca/trust-bundle.pem',
  'ca/xds-ca.pem',
  'ca/xds-ca-next.pem',
  'xds-token.key',
  'last-good.json',
  'history.jsonl',
];

export function holdsState(stateDir: string): boolean {
  return STATE_FILES.some((f) => existsSync(path.join(stateDir, f)));
}

export interface State {
  /** The workload CA; absent for `bootstrap` over existing state (it needs only the xDS CA and the token key). */
  authority?: Authority;
  xdsCa: XdsCa;
  tokens: ProxyTokens;
}

/**
 * Opens (on a first start: creates) the state. `workloadCa: false` skips the workload CA when the state exists
 * (`chancery bootstrap`: a control plane with a user-supplied CA has none in the state directory).
 */
export async function openState(o: {
  stateDir: string;
  clock: Clock;
  ca?: CaFiles;
  workloadCa?: boolean;
}): Promise<State> {
  const create = !holdsState(o.stateDir);
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const wantCa = create || o.workloadCa !== false;
  // All or nothing: with state present nothing is created, so a refused start leaves the directory as it was.
  const ca = { stateDir: o.stateDir, clock: o.clock, create, ...(o.ca ? { files: o.ca } : {}) };
  const authority = wantCa ? await Authority.open(ca) : undefined;
  const xdsCa = XdsCa.open({ stateDir: o.stateDir, clock: o.clock, create });
  const tokens = ProxyTokens.open(o.stateDir, { create });
  return { ...(authority ? { authority } : {}), xdsCa, tokens };
}

// ---- last-good.json: the last accepted revision of a source ----

export interface LastGood {
  source: string;
  revision: string;
}

export function lastGoodFile(stateDir: string): string {
  return path.join(stateDir, 'last-good.json');
}

export function writeLastGood(stateDir: string, v: LastGood): void {
  writeFileAtomic(lastGoodFile(stateDir), JSON.stringify(v) + '\n');
}

/**
 * The last good revision, or undefined. A corrupt file is logged as an error naming it and ignored rather than
 * refused: it only lets a restart whose newest revision is rejected serve the previous one; without it the proxies
 * keep their own last configuration anyway, and the next accepted revision rewrites the file.
 */
export function readLastGood(stateDir: string, log: Logger): LastGood | undefined {
  const file = lastGoodFile(stateDir);
  if (!existsSync(file)) return undefined;
  try {
    const v = JSON.parse(readStateFile(file)) as Partial<LastGood>;
    if (typeof v?.source === 'string' && typeof v.revision === 'string') {
      return { source: v.source, revision: v.revision };
    }
    throw new Error('expected {"source": string, "revision": string}');
  } catch (err) {
    log.error('ignoring a corrupt state file; the last good revision is unknown until the next accepted one', {
      file,
      error: (err as Error).message,
    });
    return undefined;
  }
}
