/**
 * `chancery serve`: runs the control plane on a policy directory (the bundled example mesh by default).
 */
import os from 'node:os';
import path from 'node:path';
import { StoreKeyError } from '../store/sealed.js';
import { ControlPlane } from '../app/control-plane.js';
import { createLogger, type Level } from '../app/logger.js';
import { CREDENTIAL_FILE } from '../admin/credential.js';
import { startStatusServer } from '../admin/status-server.js';
import { adminConfig, AdminSetupError, bindProblem, type AdminConfig } from '../admin/setup.js';
import { command, DEFAULT_CONFIG_DIR, parse, parsePort, UsageError } from './args.js';
import { BootstrapWriter } from '../app/bootstraps.js';
import { parseDurationMs } from '../policy/reader.js';

const HELP = `Usage: chancery serve [options]

  --config DIR          policy directory to serve (default: ${DEFAULT_CONFIG_DIR}); watched for changes
  --git REPO            follow a Git repository instead (a local path or a URL); the revision is the commit SHA
  --branch NAME         branch to follow (default main)
  --path SUBDIR         directory of the repository holding the policies (default: the root)
  --poll DURATION       how often to look for new commits (default 10s; POST /actions/sync to look now)
  --otlp-endpoint URL   send the control plane's traces over OTLP/HTTP (e.g. http://127.0.0.1:4318/v1/traces);
                        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is read when this is not given
  --xds-host HOST       address for xDS (default 127.0.0.1; use 0.0.0.0 to serve other machines)
  --xds-port PORT       xDS (ADS, gRPC) port (default 15010)
  --admin-host HOST     status API address (default 127.0.0.1); beyond loopback it needs --admin-tls-cert/-key,
                        and then every request but /healthz and the dashboard page needs the admin credential
  --admin-port PORT     status API port (default 15014)
  --admin-allowed-host NAME  a name accepted in the Host header besides loopback names and addresses and the
                        --admin-host address (repeatable; e.g. the name clients use to reach an exposed port)
  --admin-tls-cert FILE --admin-tls-key FILE
                        serve the status API over HTTPS with this certificate and key (PEM)
  --state-dir DIR       control-plane state (default .chancery)
  --credentials-dir DIR TLS credentials that Gateways and DestinationRules (TLS origination) name, outside Git:
                        DIR/<credentialName>/tls.crt, tls.key and/or ca.crt (a Kubernetes TLS Secret's layout);
                        watched, rotated without restarts
  --log-level LEVEL     debug, info, warn or error (default info)
  --max-new-streams N   new xDS streams admitted per second (default 100)
  --registration-grace DURATION  how long an instance registered into a WorkloadGroup stays in its services
                        after its xDS stream went away (default 30s)
  --xds-plaintext-port PORT  also serve plaintext xDS on the xDS host (off by default; for proxyless gRPC and tests)
  --ca-cert FILE --ca-key FILE [--ca-chain FILE]
                        sign with your own root or intermediate (PEM; PKCS#8 ECDSA P-256 key) instead of a generated root
  --store etcd://HOST:PORT[,HOST:PORT...]
                        run as one replica of several sharing this etcd (v3): trust, certificates, registrations,
                        proxy status; needs --store-key (default: none, a single control plane on --state-dir)
  --store-key FILE      32+ random bytes (chancery store-key FILE), the same file for every replica: it seals the
                        private keys kept in the store; a replica with another key refuses to start
  --replica NAME        this replica's name in the store and in status (default HOSTNAME/XDS-HOST:XDS-PORT)

On every accepted revision (of the directory or of the Git branch), ready-to-run Envoy bootstraps for all its
workloads are written to <state-dir>/bootstrap/ from that revision's compile (again when what they trust rotates); a
workload whose bootstrap would not change keeps its file, and the files of removed workloads are deleted.
POST /actions/* needs the admin credential, <state-dir>/admin.token (created on first start, mode 0600), as
"Authorization: Bearer"; chancery rotate-root and status read it from the same --state-dir default.`;

/** Checks the admin flags (and reads the TLS files) before anything binds. */
function adminSettings(values: Record<string, string | boolean | string[] | undefined>): AdminConfig {
  const [cert, key, host] = [values['admin-tls-cert'], values['admin-tls-key'], values['admin-host']] as string[];
  if (!!cert !== !!key) throw new UsageError('--admin-tls-cert and --admin-tls-key go together');
  const problem = bindProblem(host, !!cert);
  if (problem) throw new UsageError(problem);
  const allowedHosts = values['admin-allowed-host'] as string[];
  const tls = cert ? { tls: { certFile: cert, keyFile: key } } : {};
  return adminConfig(host, { allowedHosts, ...tls });
}

export function runServe(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, {
      config: { type: 'string', default: DEFAULT_CONFIG_DIR },
      'xds-host': { type: 'string', default: '127.0.0.1' },
      'xds-port': { type: 'string', default: '15010' },
      'admin-host': { type: 'string', default: '127.0.0.1' },
      'admin-port': { type: 'string', default: '15014' },
      'admin-allowed-host': { type: 'string', multiple: true, default: [] },
      'admin-tls-cert': { type: 'string' },
      'admin-tls-key': { type: 'string' },
      'state-dir': { type: 'string', default: '.chancery' },
      'credentials-dir': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'max-new-streams': { type: 'string', default: '100' },
      'registration-grace': { type: 'string', default: '30s' },
      'xds-plaintext-port': { type: 'string' },
      'ca-cert': { type: 'string' },
      'ca-key': { type: 'string' },
      'ca-chain': { type: 'string' },
      git: { type: 'string' },
      branch: { type: 'string', default: 'main' },
      path: { type: 'string', default: '' },
      poll: { type: 'string', default: '10s' },
      'otlp-endpoint': { type: 'string' },
      store: { type: 'string' },
      'store-key': { type: 'string' },
      replica: { type: 'string' },
    });
    if (!!values.store !== !!values['store-key']) throw new UsageError('--store and --store-key go together');
    if (values.replica && !values.store) throw new UsageError('--replica goes with --store');
    const otlp = values['otlp-endpoint'] ?? process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    const pollMs = parseDurationMs(values.poll!);
    if (pollMs === undefined || pollMs < 100) throw new UsageError('--poll must be a duration such as 10s');
    if (!!values['ca-cert'] !== !!values['ca-key']) throw new UsageError('--ca-cert and --ca-key go together');
    const level = values['log-level'] as Level;
    if (!['debug', 'info', 'warn', 'error'].includes(level))
      throw new UsageError(`--log-level: "${level}" is not debug, info, warn or error`);
    const maxNew = Number(values['max-new-streams']);
    if (!Number.isFinite(maxNew) || maxNew <= 0) throw new UsageError('--max-new-streams must be a positive number');
    const graceMs = parseDurationMs(values['registration-grace']!);
    if (graceMs === undefined || graceMs > 24 * 3_600_000) {
      throw new UsageError('--registration-grace must be a duration such as 30s (at most 24h)');
    }
    const adminPort = parsePort(values['admin-port']!, '--admin-port');
    const plaintext = values['xds-plaintext-port'];
    const plaintextPort = plaintext ? parsePort(plaintext, '--xds-plaintext-port') : undefined;
    let admin: AdminConfig;
    try {
      admin = adminSettings(values);
    } catch (err) {
      if (!(err instanceof AdminSetupError)) throw err;
      console.error(`chancery: ${err.message}`);
      return 1;
    }
    const log = createLogger(level);
    const cp = new ControlPlane(
      {
        configDir: path.resolve(values.config!),
        ...(otlp ? { otlpTracesEndpoint: otlp } : {}),
        ...(values.git ? { git: { repo: values.git, branch: values.branch!, subdir: values.path!, pollMs } } : {}),
        xdsAddress: `${values['xds-host']}:${parsePort(values['xds-port']!, '--xds-port')}`,
        ...(plaintextPort !== undefined ? { xdsPlaintextAddress: `${values['xds-host']}:${plaintextPort}` } : {}),
        ...(values['ca-cert']
          ? {
              ca: {
                certFile: values['ca-cert'],
                keyFile: values['ca-key']!,
                ...(values['ca-chain'] ? { chainFile: values['ca-chain'] } : {}),
              },
            }
          : {}),
        stateDir: path.resolve(values['state-dir']!),
        ...(values['credentials-dir'] ? { credentialsDir: path.resolve(values['credentials-dir']) } : {}),
        maxNewStreamsPerSecond: maxNew,
        registrationGraceMs: graceMs,
        ...(values.store
          ? {
              store: {
                url: values.store,
                keyFile: values['store-key']!,
                replica: values.replica ?? `${os.hostname()}/${values['xds-host']}:${values['xds-port']}`,
              },
            }
          : {}),
        watch: true,
      },
      log,
    );
    try {
      await cp.start();
    } catch (err) {
      const storeProblem = err instanceof StoreKeyError || /^cannot reach the store/.test((err as Error).message);
      if (!storeProblem) throw err;
      console.error(`chancery: ${(err as Error).message}`);
      await cp.stop().catch(() => undefined);
      return 1;
    }
    const status = await startStatusServer(cp, values['admin-host']!, adminPort, { config: admin, log }).catch(
      async (err: Error) => {
        if (!(err instanceof AdminSetupError)) throw err;
        log.error('cannot start the status API', { error: err.message });
        await cp.stop();
        return undefined;
      },
    );
    if (!status) return 1;
    const addr = status.address();
    const port = typeof addr === 'object' && addr ? addr.port : adminPort;
    const url = `${admin.tls ? 'https' : 'http'}://${values['admin-host']}:${port}/status`;
    const credential = path.join(cp.settings.stateDir, CREDENTIAL_FILE);
    log.info('status API listening', { url, credential, readsNeedCredential: admin.requireCredentialForReads });
    // Bootstraps come from each accepted revision's own compile (a directory's or a Git commit's), never a new one.
    const bootstraps = new BootstrapWriter({
      dir: path.join(cp.settings.stateDir, 'bootstrap'),
      xds: { host: values['xds-host'] === '0.0.0.0' ? '127.0.0.1' : values['xds-host']!, port: cp.xdsPort },
      tokenTtlSeconds: 30 * 24 * 3600,
      issueToken: (id, ttl) => cp.issueToken(id, ttl),
      trustPem: () => cp.xdsCa.bootstrapTrustPem(),
      log,
    });
    cp.onAccepted.push((result) => void bootstraps.write(result));
    cp.onBootstrapTrustChanged.push(() => void (cp.current && bootstraps.write(cp.current.result)));
    if (cp.current) void bootstraps.write(cp.current.result);
    await new Promise<void>((resolve) => {
      const stop = (sig: string): void => {
        log.info('shutting down', { signal: sig });
        resolve();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    status.close();
    await cp.stop();
    return 0;
  });
}
