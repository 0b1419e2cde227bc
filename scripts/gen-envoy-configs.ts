/**
 * Regenerates envoy-configs/: the Envoy bootstrap of every workload of the bundled example mesh, exactly as
 * `chancery bootstrap --config examples/mesh --workload NS/NAME` writes it (Delta ADS, control plane on
 * 127.0.0.1:15010). `npm run envoy-configs`; a test checks they are current.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runBootstrap } from '../src/cli/bootstrap.js';
import { compileSource } from '../src/compiler.js';
import { readDirectory } from '../src/source/directory.js';

export const EXAMPLE = 'examples/mesh';
export const OUT_DIR = 'envoy-configs';

export function exampleWorkloads(): string[] {
  const src = readDirectory(EXAMPLE);
  const r = compileSource(src.value, src.diagnostics);
  if (!r.ok || !r.model) throw new Error(`${EXAMPLE} does not compile; run chancery check ${EXAMPLE}`);
  return r.model.workloads.map((w) => w.id);
}

export function configFile(dir: string, id: string): string {
  return path.join(dir, `${id.replace('/', '.')}.yaml`);
}

export async function generate(dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const id of exampleWorkloads()) {
    const file = configFile(dir, id);
    if ((await runBootstrap(['--config', EXAMPLE, '--workload', id, '--out', file])) !== 0) throw new Error(`bootstrap failed for ${id}`);
    files.push(file);
  }
  for (const f of readdirSync(dir)) if (f.endsWith('.yaml') && !files.includes(path.join(dir, f))) rmSync(path.join(dir, f));
  return files;
}

if (process.argv[1] && path.resolve(process.argv[1]).endsWith('gen-envoy-configs.ts')) {
  const files = await generate(OUT_DIR);
  console.log(`wrote ${files.join(', ')}`);
}
