/**
 * `chancery rotate-root`: asks a running control plane to rotate its generated root CA, and waits for the result.
 */
import { command, parse } from './args.js';

const HELP = `Usage: chancery rotate-root [--admin http://127.0.0.1:15014]

Adds a new root to the trust bundle, waits for every proxy, switches signing and re-issues every workload
certificate, waits again, then removes the old root. Proxies keep serving throughout.`;

export function runRotateRoot(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, { admin: { type: 'string', default: 'http://127.0.0.1:15014' } });
    const res = await fetch(new URL('/actions/rotate-root', values.admin), { method: 'POST' }).catch((err: Error) => {
      console.error(`chancery: cannot reach the control plane at ${values.admin}: ${err.message}`);
      return undefined;
    });
    if (!res) return 1;
    const body = (await res.json()) as { ok: boolean; ms?: number; error?: string; signer?: { serial: string } };
    if (!body.ok) {
      console.error(`chancery: root rotation failed: ${body.error}`);
      return 1;
    }
    console.log(`root rotated in ${body.ms} ms; signing with ${body.signer?.serial}`);
    return 0;
  });
}
