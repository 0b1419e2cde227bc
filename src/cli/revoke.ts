/**
 * `chancery revoke --group NS/GROUP`: makes every group token issued so far for a WorkloadGroup useless (one more
 * generation in <state-dir>/groups.json) and removes the instances that registered with them. Asks the running
 * control plane (which writes the file and closes those instances' streams); when none answers, writes the file
 * itself, which the control plane reads when it starts.
 */
import { GroupGenerations } from '../server/group-generations.js';
import { adminRequest, DEFAULT_ADMIN, DEFAULT_STATE_DIR } from './admin-client.js';
import { command, parse, UsageError } from './args.js';

const HELP = `Usage: chancery revoke --group NAMESPACE/GROUP [--admin ${DEFAULT_ADMIN}]
                       [--state-dir ${DEFAULT_STATE_DIR}]

Revokes the group tokens of a WorkloadGroup (the ones in bootstraps written by chancery bootstrap --group): they
register nothing from now on, and instances that registered with them leave their services at once. Bootstraps
written afterwards carry a token of the new generation.`;

export function runRevoke(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, {
      group: { type: 'string' },
      admin: { type: 'string', default: DEFAULT_ADMIN },
      'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
    });
    const group = values.group ?? '';
    if (!/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(group)) throw new UsageError('--group NAMESPACE/GROUP is required');
    const stateDir = values['state-dir']!;
    const action = `/actions/revoke-group?group=${encodeURIComponent(group)}`;
    const r = await adminRequest(values.admin!, action, { method: 'POST', stateDir });
    if (r.ok) {
      const body = r.body as { ok: boolean; generation?: number; evicted?: string[]; error?: string };
      if (!body.ok) {
        console.error(`chancery: revocation failed: ${body.error}`);
        return 1;
      }
      const removed = body.evicted?.join(', ') || 'none';
      console.log(`group ${group}: tokens revoked (generation ${body.generation}); instances removed: ${removed}`);
      return 0;
    }
    if (!r.message.startsWith('cannot reach')) {
      console.error(`chancery: ${r.message}`);
      return 1;
    }
    const generation = GroupGenerations.open(stateDir).revoke(group);
    const later = 'no control plane answered, it applies this when it starts';
    console.log(`group ${group}: tokens revoked in ${stateDir} (generation ${generation}); ${later}`);
    return 0;
  });
}
