/**
 * RE2, the regex engine Envoy uses, compiled to WebAssembly (the `re2-wasm` package). Policy checks use it to
 * reject a pattern Envoy would NACK; explain and graph use it to match exactly as Envoy's `safe_regex` does (the
 * whole value must match). JavaScript's RegExp differs from RE2 in syntax and meaning, so it is never used for
 * patterns that Envoy evaluates.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
interface Re2 {
  test(s: string): boolean;
}
const { RE2 } = require('re2-wasm') as { RE2: new (pattern: string, flags: string) => Re2 };

/** undefined when RE2 accepts the pattern, else RE2's reason. */
export function re2Error(pattern: string): string | undefined {
  try {
    new RE2(pattern, 'u');
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: \/.*\/u: /, '');
  }
}

const compiled = new Map<string, Re2>();

/** Envoy's safe_regex: the whole value must match the RE2 pattern. */
export function re2FullMatch(pattern: string, value: string): boolean {
  let re = compiled.get(pattern);
  if (!re) {
    if (compiled.size > 10_000) compiled.clear(); // bound: patterns come from policy files
    re = new RE2(`^(?:${pattern})$`, 'u');
    compiled.set(pattern, re);
  }
  return re.test(value);
}

/** A literal string as an RE2 pattern. */
export function re2Quote(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
