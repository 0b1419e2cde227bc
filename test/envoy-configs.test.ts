/**
 * envoy-configs/ holds the bootstraps of the example mesh (credentials replaced by placeholders): they must be
 * current, and the real ones (with credentials) must be valid for Envoy.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { configFile, exampleWorkloads, generate, OUT_DIR, realBootstrap } from '../scripts/gen-envoy-configs.js';
import { validateEnvoyConfig } from './support/envoy.js';

test('envoy-configs/ is current (npm run envoy-configs regenerates it)', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chancery-bootstraps-'));
  await generate(tmp);
  for (const id of exampleWorkloads()) {
    assert.equal(readFileSync(configFile(OUT_DIR, id), 'utf8'), readFileSync(configFile(tmp, id), 'utf8'), `${id}: run npm run envoy-configs`);
  }
});

test('every example bootstrap, with its credentials, passes envoy --mode validate', async () => {
  const state = mkdtempSync(path.join(os.tmpdir(), 'chancery-state-'));
  for (const id of exampleWorkloads()) {
    const v = validateEnvoyConfig(await realBootstrap(id, state));
    assert.ok(v.ok, `${id}:\n${v.output}`);
  }
});
