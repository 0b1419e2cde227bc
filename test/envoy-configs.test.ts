/**
 * envoy-configs/ holds the bootstraps of the example mesh: they must be current and valid for Envoy.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { configFile, exampleWorkloads, generate, OUT_DIR } from '../scripts/gen-envoy-configs.js';
import { validateEnvoyConfig } from './support/envoy.js';

test('envoy-configs/ is current (npm run envoy-configs regenerates it)', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chancery-bootstraps-'));
  await generate(tmp);
  for (const id of exampleWorkloads()) {
    assert.equal(readFileSync(configFile(OUT_DIR, id), 'utf8'), readFileSync(configFile(tmp, id), 'utf8'), `${id}: run npm run envoy-configs`);
  }
});

test('every bootstrap in envoy-configs/ passes envoy --mode validate', () => {
  for (const id of exampleWorkloads()) {
    const v = validateEnvoyConfig(parse(readFileSync(configFile(OUT_DIR, id), 'utf8')));
    assert.ok(v.ok, `${id}:\n${v.output}`);
  }
});
