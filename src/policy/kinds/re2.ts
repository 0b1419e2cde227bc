/**
 * Stage: decode. Envoy matches regexes with RE2; check a pattern with the real RE2 (compiled to WebAssembly, the
 * `re2-wasm` package) so an invalid one is a diagnostic at its line, never a NACK.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { RE2 } = require('re2-wasm') as { RE2: new (pattern: string, flags: string) => unknown };

/** undefined when RE2 accepts the pattern, else RE2's reason. */
export function isRe2Compatible(pattern: string): string | undefined {
  try {
    new RE2(pattern, 'u');
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: \/.*\/u: /, '');
  }
}
