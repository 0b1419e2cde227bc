/**
 * Regenerates envoy-configs/: the Envoy bootstrap of every workload of the bundled example mesh, as
 * `chancery bootstrap --config examples/mesh --workload NS/NAME` writes it (Delta ADS over TLS, control plane on
 * 127.0.0.1:15010), with the two per-installation credentials (the workload's xDS token and the mesh trust bundle)
 * replaced by placeholders: they are secrets of one control plane's state and do not belong in Git. Runnable copies
 * are written by `chancery serve` into <state-dir>/bootstrap/. `npm run envoy-configs`; a test checks they are current.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { runBootstrap } from '../src/cli/bootstrap.js';
import { compileSource } from '../src/compiler.js';
import { readDirectory } from '../src/source/directory.js';

export const EXAMPLE = 'examples/mesh';
export const OUT_DIR = 'envoy-configs';
export const TOKEN_PLACEHOLDER = '<xds token: run chancery bootstrap>';
export const BUNDLE_PLACEHOLDER = '<xDS CA certificate: run chancery bootstrap>';

export function exampleWorkloads(): string[] {
  const src = readDirectory(EXAMPLE);
  const r = compileSource(src.value, src.diagnostics);
  if (!r.ok || !r.model) throw new Error(`${EXAMPLE} does not compile; run chancery check ${EXAMPLE}`);
  return r.model.workloads.map((w) => w.id);
}

export function configFile(dir: string, id: string): string {
  return path.join(dir, `${id.replace('/', '.')}.yaml`);
}

/** A real bootstrap (with credentials from `stateDir`) for one example workload. */
export async function realBootstrap(id: string, stateDir: string): Promise<any> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chancery-bootstrap-'));
  const file = path.join(tmp, 'bootstrap.yaml');
  if ((await runBootstrap(['--config', EXAMPLE, '--workload', id, '--out', file, '--state-dir', stateDir])) !== 0) throw new Error(`bootstrap failed for ${id}`);
  const config = parse(readFileSync(file, 'utf8'));
  rmSync(tmp, { recursive: true, force: true });
  return config;
}

export function redact(config: any): any {
  const c = structuredClone(config);
  for (const g of c.dynamic_resources.ads_config.grpc_services) for (const m of g.initial_metadata ?? []) m.value = `Bearer ${TOKEN_PLACEHOLDER}`;
  for (const cl of c.static_resources.clusters) {
    const v = cl.transport_socket?.typed_config?.common_tls_context?.validation_context;
    if (v?.trusted_ca) v.trusted_ca.inline_string = BUNDLE_PLACEHOLDER;
  }
  return c;
}

export async function generate(dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const state = mkdtempSync(path.join(os.tmpdir(), 'chancery-state-'));
  const files: string[] = [];
  try {
    for (const id of exampleWorkloads()) {
      const file = configFile(dir, id);
      writeFileSync(file, stringify(redact(await realBootstrap(id, state)), { aliasDuplicateObjects: false }));
      files.push(file);
    }
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
  for (const f of readdirSync(dir)) if (f.endsWith('.yaml') && !files.includes(path.join(dir, f))) rmSync(path.join(dir, f));
  return files;
}

if (process.argv[1] && path.resolve(process.argv[1]).endsWith('gen-envoy-configs.ts')) {
  const files = await generate(OUT_DIR);
  console.log(`wrote ${files.join(', ')}`);
}
