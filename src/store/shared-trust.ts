/**
 * Store: the trust material every replica shares (workload CA, xDS CA, token key), as one sealed value `trust` so
 * that it is created, and replaced, as a whole. It is materialised into the replica's state directory before the
 * state is opened, so the file-based CA and token code stay as they are. The first replica creates it with one
 * create-if-absent transaction (from its own state directory when that already holds trust, e.g. a single control
 * plane becoming the first replica; else fresh); a replica that loses the race takes the winner's.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../util/files.js';
import type { EtcdStore } from './etcd-store.js';

/** The hash of the trust in a state directory (what a new replica acknowledges: it has no proxy behind yet). */
export function localTrustHash(stateDir: string): string {
  return trustHash(readLocal(stateDir));
}

/** The state files that are trust: shared by every replica. The rest of the state directory is per replica. */
export const TRUST_FILES = [
  'ca/root-cert.pem',
  'ca/root-key.pem',
  'ca/trust-bundle.pem',
  'ca/xds-ca.pem',
  'ca/xds-ca-next.pem',
  'xds-token.key',
];
const KEY = 'trust';

type TrustFiles = Record<string, string>;

/** Makes the state directory hold the store's trust material, creating that first when the store has none. */
export async function materialiseTrust(
  store: EtcdStore,
  stateDir: string,
  /** Creates fresh trust material in an empty directory (the code of a first start). */
  create: (dir: string) => Promise<unknown>,
): Promise<'created' | 'joined'> {
  const held = await readTrust(store);
  if (held) {
    writeTrust(stateDir, held);
    return 'joined';
  }
  const mine = hasTrust(stateDir) ? readLocal(stateDir) : await freshTrust(create);
  const sealed = store.seal(KEY, JSON.stringify({ files: mine }));
  const r = await store.kv.if(KEY, 'Create', '==', 0).then(store.kv.put(KEY).value(sealed)).commit();
  const winner = r.succeeded ? mine : await readTrust(store);
  if (!winner) throw new Error(`${store.full(KEY)} vanished while joining the store`);
  writeTrust(stateDir, winner);
  return r.succeeded ? 'created' : 'joined';
}

/** Writes the state directory's trust back to the store (after a rotation step); returns its hash. */
export async function saveTrust(store: EtcdStore, stateDir: string): Promise<string> {
  const files = readLocal(stateDir);
  await store.kv.put(KEY).value(store.seal(KEY, JSON.stringify({ files })));
  return trustHash(files);
}

/**
 * Follows the store's trust: when another replica changed it (a rotation step), the state directory gets the new
 * files and `changed` runs with their hash.
 */
export function followTrust(store: EtcdStore, stateDir: string, changed: (hash: string) => void): Promise<void> {
  let current = trustHash(readLocal(stateDir));
  return store.follow(
    KEY,
    (key, value) => {
      if (key !== '') return;
      const files = (JSON.parse(store.open(KEY, value)) as { files: TrustFiles }).files;
      const hash = trustHash(files);
      if (hash === current) return;
      current = hash;
      writeTrust(stateDir, files);
      changed(hash);
    },
    () => undefined,
  );
}

/** A digest of trust files (what per-step acknowledgements of a rotation name). */
export function trustHash(files: TrustFiles): string {
  const h = createHash('sha256');
  for (const f of Object.keys(files).sort()) h.update(`${f}\0${files[f]}\0`);
  return h.digest('hex').slice(0, 16);
}

async function readTrust(store: EtcdStore): Promise<TrustFiles | undefined> {
  const v = await store.kv.get(KEY).string();
  if (v === null) return undefined;
  const parsed = JSON.parse(store.open(KEY, v)) as { files?: TrustFiles };
  if (!parsed.files || typeof parsed.files !== 'object') throw new Error(`${store.full(KEY)} holds no files`);
  return parsed.files;
}

function hasTrust(stateDir: string): boolean {
  return existsSync(path.join(stateDir, 'ca/xds-ca.pem')) || existsSync(path.join(stateDir, 'xds-token.key'));
}

function readLocal(stateDir: string): TrustFiles {
  const out: TrustFiles = {};
  for (const f of TRUST_FILES) {
    const file = path.join(stateDir, f);
    if (existsSync(file)) out[f] = readFileSync(file, 'utf8');
  }
  return out;
}

/** New trust material, created by the same code as a first start, in a scratch directory. */
async function freshTrust(create: (dir: string) => Promise<unknown>): Promise<TrustFiles> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chancery-trust-'));
  try {
    await create(tmp);
    return readLocal(tmp);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The store's files replace the directory's (a trust file the store does not hold is removed). */
function writeTrust(stateDir: string, files: TrustFiles): void {
  mkdirSync(path.join(stateDir, 'ca'), { recursive: true, mode: 0o700 });
  for (const f of TRUST_FILES) {
    const file = path.join(stateDir, f);
    if (typeof files[f] === 'string') writeFileAtomic(file, files[f]);
    else rmSync(file, { force: true });
  }
}
