/**
 * `chancery status`: what a running control plane is serving — per revision accepted or rejected (with
 * diagnostics), convergence; per proxy its identity, connection, the revision it holds, ACK/NACK state per type
 * and its last rejection traced to policy lines.
 */
import { adminRequest, DEFAULT_ADMIN, DEFAULT_STATE_DIR } from './admin-client.js';
import { command, parse } from './args.js';
import { formatPlace } from '../diag/diagnostic.js';
import { diagnosticLine } from '../diag/format.js';

const HELP = `Usage: chancery status [--admin ${DEFAULT_ADMIN}] [--json] [--state-dir ${DEFAULT_STATE_DIR}]

Shows the revisions the control plane accepted or rejected, and for each proxy which revision it runs and why
it is behind (pending responses, NACKs with Envoy's message and the policy lines of the rejected resources).
Sends the admin credential from <state-dir>/admin.token when there is one (needed when the port is beyond loopback).`;

interface Status {
  controlPlane: { source: string; startedAt: string };
  revision: { current: string | null };
  replica?: { name: string; storeReachable: boolean };
  revisions: {
    revision: string;
    status: string;
    at: string;
    diagnostics: {
      code: string;
      severity: string;
      message: string;
      location?: { file: string; line: number; column: number };
    }[];
    convergence?: { connected: number; synced: number; behind: number; rejected: number; ms?: number };
  }[];
  proxies: {
    id: string;
    connected: boolean;
    variant: string;
    connectedAt: string;
    /** With replicas: the replica serving it. */
    replica?: string;
    registered?: { group: string; address: string; leavingSince?: string } | null;
    revision?: string;
    lastSynced?: { revision: string; at: string };
    types: Record<
      string,
      {
        pending: boolean;
        sent?: { version: string; revision?: string };
        acked?: { version: string; revision?: string };
        lastNack?: {
          at: string;
          revision?: string;
          message: string;
          resources: { name: string; origins: { file: string; line: number; column: number; revision?: string }[] }[];
        };
      }
    >;
  }[];
  certificates?: { workloads: { identity: string; notAfter: string; rotateAt: string }[] };
}

const short = (rev: string | undefined | null): string =>
  rev ? (rev.startsWith('dir:') ? rev : rev.slice(0, 12)) : '-';

export function formatStatus(s: Status): string {
  const out: string[] = [];
  out.push(`source: ${s.controlPlane.source}`);
  out.push(`serving: ${short(s.revision.current)}`);
  if (s.replica) out.push(`replica: ${s.replica.name}${s.replica.storeReachable ? '' : ' (store UNREACHABLE)'}`);
  out.push('');
  out.push('REVISIONS');
  for (const r of s.revisions.slice(0, 10)) {
    const c = r.convergence;
    const rejected = c?.rejected ? `, ${c.rejected} rejected` : '';
    const converged = c?.ms !== undefined ? `, converged in ${c.ms} ms` : '';
    const conv = c ? ` ${c.synced}/${c.connected} proxies${rejected}${converged}` : '';
    out.push(`  ${short(r.revision)}  ${r.status.padEnd(8)} ${r.at}${conv}`);
    for (const d of r.diagnostics.filter((x) => x.severity === 'error').slice(0, 20)) {
      out.push(`      ${diagnosticLine(d)}`);
    }
  }
  out.push('');
  out.push('PROXIES');
  for (const p of s.proxies) {
    const state = !p.connected ? 'disconnected' : p.revision === s.revision.current ? 'in sync' : 'behind';
    const r = p.registered;
    const leaving = r?.leavingSince ? `, leaving (gone since ${r.leavingSince})` : '';
    const reg = r ? `  registered into ${r.group} at ${r.address}${leaving}` : '';
    const runs = short(p.revision ?? p.lastSynced?.revision);
    const on = p.replica ? `  on ${p.replica}` : '';
    out.push(`  ${p.id}  ${state}  runs ${runs}${on}  (${p.variant}, connected ${p.connectedAt})${reg}`);
    for (const [type, t] of Object.entries(p.types)) {
      const acked = t.acked ? `${t.acked.version} @ ${short(t.acked.revision)}` : '-';
      out.push(`      ${type}: acked ${acked}${t.pending ? `, pending ${t.sent?.version}` : ''}`);
      if (t.lastNack) {
        out.push(`        NACK at ${t.lastNack.at} (revision ${short(t.lastNack.revision)}): ${t.lastNack.message}`);
        for (const r of t.lastNack.resources) {
          const from = r.origins.map(formatPlace).join(', ') || 'no policy origin';
          out.push(`          ${r.name} <- ${from}`);
        }
      }
    }
  }
  const certs = s.certificates?.workloads ?? [];
  if (certs.length > 0) {
    out.push('');
    out.push('CERTIFICATES');
    for (const c of certs) out.push(`  ${c.identity}  expires ${c.notAfter}  rotates ${c.rotateAt}`);
  }
  return out.join('\n');
}

export function runStatus(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, {
      admin: { type: 'string', default: DEFAULT_ADMIN },
      json: { type: 'boolean', default: false },
      'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
    });
    const r = await adminRequest(values.admin!, '/status', { stateDir: values['state-dir']! });
    if (!r.ok || r.status !== 200) {
      console.error(`chancery: ${r.ok ? `/status answered ${r.status}` : r.message}`);
      return 1;
    }
    const body = r.body as Status;
    console.log(values.json ? JSON.stringify(body, null, 2) : formatStatus(body));
    return 0;
  });
}
