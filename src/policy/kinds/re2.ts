/**
 * Stage: decode. Envoy matches regexes with RE2; a pattern is checked with the real RE2 (src/util/re2.ts) so an
 * invalid one is a diagnostic at its line, never a NACK.
 */
export { re2Error as isRe2Compatible } from '../../util/re2.js';
