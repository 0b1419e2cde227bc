/**
 * `chancery serve`: runs the control plane on a policy directory (the bundled example mesh by default).
 */
import path from 'node:path';
import { ControlPlane } from '../app/control-plane.js';
import { createLogger, type Level } from '../app/logger.js';
import { startStatusServer } from '../admin/status-server.js';
import { command, DEFAULT_CONFIG_DIR, parse, parsePort, UsageError } from './args.js';

const HELP = `Usage: chancery serve [options]

  --config DIR          policy directory to serve (default: ${DEFAULT_CONFIG_DIR}); watched for changes
  --xds-host HOST       address for xDS (default 127.0.0.1; use 0.0.0.0 to serve other machines)
  --xds-port PORT       xDS (ADS, gRPC) port (default 15010)
  --admin-host HOST     status API address (default 127.0.0.1)
  --admin-port PORT     status API port (default 15014)
  --state-dir DIR       control-plane state (default .chancery)
  --log-level LEVEL     debug, info, warn or error (default info)
  --max-new-streams N   new xDS streams admitted per second (default 100)`;

export function runServe(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, {
      config: { type: 'string', default: DEFAULT_CONFIG_DIR },
      'xds-host': { type: 'string', default: '127.0.0.1' },
      'xds-port': { type: 'string', default: '15010' },
      'admin-host': { type: 'string', default: '127.0.0.1' },
      'admin-port': { type: 'string', default: '15014' },
      'state-dir': { type: 'string', default: '.chancery' },
      'log-level': { type: 'string', default: 'info' },
      'max-new-streams': { type: 'string', default: '100' },
    });
    const level = values['log-level'] as Level;
    if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError(`--log-level: "${level}" is not debug, info, warn or error`);
    const maxNew = Number(values['max-new-streams']);
    if (!Number.isFinite(maxNew) || maxNew <= 0) throw new UsageError('--max-new-streams must be a positive number');
    const log = createLogger(level);
    const cp = new ControlPlane(
      {
        configDir: path.resolve(values.config!),
        xdsAddress: `${values['xds-host']}:${parsePort(values['xds-port']!, '--xds-port')}`,
        stateDir: path.resolve(values['state-dir']!),
        debounceQuietMs: 100,
        debounceMaxMs: 1000,
        maxNewStreamsPerSecond: maxNew,
        watch: true,
      },
      log,
    );
    await cp.start();
    const adminPort = parsePort(values['admin-port']!, '--admin-port');
    const status = await startStatusServer(cp, values['admin-host']!, adminPort);
    const addr = status.address();
    log.info('status API listening', { url: `http://${values['admin-host']}:${typeof addr === 'object' && addr ? addr.port : adminPort}/status` });
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
