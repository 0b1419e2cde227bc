/**
 * Small helpers shared by the subcommands: argument parsing with clear errors.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { StateFileError } from '../util/files.js';

export class UsageError extends Error {}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function parsePort(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${flag}: "${value}" is not a port number`);
  return n;
}

export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const i = value.lastIndexOf(':');
  if (i <= 0) throw new UsageError(`${flag}: "${value}" must be HOST:PORT`);
  return { host: value.slice(0, i).replace(/^\[|\]$/g, ''), port: parsePort(value.slice(i + 1), flag) };
}

/** Runs a command body, turning usage errors into exit code 2 and state-file errors into 1, with a message. */
export async function command(help: string, argv: string[], body: () => Promise<number> | number): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(help);
    return 0;
  }
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`chancery: ${err.message}\n\n${help}`);
      return 2;
    }
    if (err instanceof StateFileError) {
      console.error(`chancery: ${err.message}`); // names the file and what to do; a stack would only hide that
      return 1;
    }
    throw err;
  }
}

export const DEFAULT_CONFIG_DIR = 'examples/mesh';
