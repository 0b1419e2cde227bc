/**
 * `chancery store-key FILE`: writes a new store key (32 random bytes, owner-only) for `serve --store`. Every
 * replica of one store must be given the same file; it seals the private keys kept in the store.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../util/files.js';
import { command, parse, UsageError } from './args.js';

const HELP = `Usage: chancery store-key FILE

Writes 32 random bytes to FILE (mode 0600), refusing to overwrite one: the key every replica started with
serve --store etcd://... --store-key FILE must share. (head -c 32 /dev/urandom > FILE does the same.)`;

export function runStoreKey(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { positionals } = parse(argv, {}, true);
    const file = positionals[0];
    if (!file || positionals.length > 1) throw new UsageError('exactly one FILE is required');
    if (existsSync(file)) throw new UsageError(`${file} exists; a new key would lock the replicas out of the store`);
    writeFileAtomic(file, randomBytes(32));
    console.log(`store key written to ${file}; give the same file to every replica (--store-key)`);
    return 0;
  });
}
