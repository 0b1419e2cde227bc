/**
 * `chancery rotate-xds-ca begin|finish`: rotates the CA that every Envoy bootstrap trusts to reach the control
 * plane (see ca/xds-ca.ts), on a running control plane, in two steps with a redeploy of the Envoys between them.
 */
import { adminRequest, DEFAULT_ADMIN, DEFAULT_STATE_DIR } from './admin-client.js';
import { command, parse, UsageError } from './args.js';

const HELP = `Usage: chancery rotate-xds-ca begin|finish [--admin ${DEFAULT_ADMIN}] [--state-dir ${DEFAULT_STATE_DIR}]

Bootstraps are static files: what they trust changes only when Envoy restarts with a new one. So:
  1. chancery rotate-xds-ca begin    creates the next xDS CA; every bootstrap written from now on trusts both
  2. write new bootstraps (chancery bootstrap, or restart chancery serve) and restart every Envoy on them
  3. chancery rotate-xds-ca finish   the next CA becomes current; the xDS server certificate is re-issued from it
An Envoy still on a bootstrap from before step 1 cannot reconnect after step 3 (it keeps its configuration).
Root rotation (rotate-root) and restarts do not need this: they never change what bootstraps trust.`;

export function runRotateXdsCa(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values, positionals } = parse(
      argv,
      {
        admin: { type: 'string', default: DEFAULT_ADMIN },
        'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
      },
      true,
    );
    const step = positionals[0];
    if ((step !== 'begin' && step !== 'finish') || positionals.length !== 1) {
      throw new UsageError('say begin or finish');
    }
    const path = `/actions/rotate-xds-ca?step=${step}`;
    const r = await adminRequest(values.admin!, path, { method: 'POST', stateDir: values['state-dir']! });
    if (!r.ok) {
      console.error(`chancery: ${r.message}`);
      return 1;
    }
    type Anchor = { fingerprint: string };
    const body = r.body as { ok: boolean; error?: string; ca?: { current: Anchor; next: Anchor | null } };
    if (!body.ok) {
      console.error(`chancery: xDS CA rotation (${step}) failed: ${body.error}`);
      return 1;
    }
    if (step === 'begin') {
      const fp = body.ca?.next?.fingerprint;
      console.log(`next xDS CA ${fp}: write new bootstraps, restart every Envoy on them, then run finish`);
    } else {
      console.log(`xDS CA ${body.ca?.current.fingerprint} is current; the xDS server certificate was re-issued`);
    }
    return 0;
  });
}
