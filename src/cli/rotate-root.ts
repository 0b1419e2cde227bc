/**
 * `chancery rotate-root`: asks a running control plane to rotate its generated root CA, and waits for the result.
 */
import { adminRequest, DEFAULT_ADMIN, DEFAULT_STATE_DIR } from './admin-client.js';
import { command, parse } from './args.js';

const HELP = `Usage: chancery rotate-root [--admin ${DEFAULT_ADMIN}] [--state-dir ${DEFAULT_STATE_DIR}]

Adds a new root to the trust bundle, waits for every proxy, switches signing and re-issues every workload
certificate, waits again, then removes the old root. Proxies keep serving throughout.
Sends the admin credential from <state-dir>/admin.token (written by chancery serve with the same --state-dir).`;

export function runRotateRoot(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, {
      admin: { type: 'string', default: DEFAULT_ADMIN },
      'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
    });
    const stateDir = values['state-dir']!;
    const r = await adminRequest(values.admin!, '/actions/rotate-root', { method: 'POST', stateDir });
    if (!r.ok) {
      console.error(`chancery: ${r.message}`);
      return 1;
    }
    const body = r.body as { ok: boolean; ms?: number; error?: string; signer?: { serial: string } };
    if (!body.ok) {
      console.error(`chancery: root rotation failed: ${body.error}`);
      return 1;
    }
    console.log(`root rotated in ${body.ms} ms; signing with ${body.signer?.serial}`);
    return 0;
  });
}
