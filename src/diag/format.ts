/**
 * Diagnostic formatters: human text with a caret excerpt, JSON, and GitHub workflow annotations.
 */
import { formatOrigin, formatPlace, type Diagnostic } from './diagnostic.js';

/** `file:line:col: severity CODE: message`, then the source line and a caret under the column. */
export function formatHuman(ds: readonly Diagnostic[], sources: ReadonlyMap<string, string> = new Map()): string {
  const out: string[] = [];
  for (const d of ds) {
    out.push(`${formatPlace(d.location)}: ${d.severity} ${d.code}: ${d.message}${d.object ? ` (${d.object})` : ''}`);
    const text = d.location ? sources.get(d.location.file) : undefined;
    if (text !== undefined && d.location) {
      const line = text.split('\n')[d.location.line - 1];
      if (line !== undefined) {
        const gutter = String(d.location.line).padStart(4);
        out.push(`${gutter} | ${line}`);
        out.push(`${' '.repeat(gutter.length)} | ${' '.repeat(Math.max(0, d.location.column - 1))}^`);
      }
    }
    for (const r of d.related ?? []) out.push(`      note: ${r.message} at ${formatOrigin(r.location)}`);
  }
  return out.join('\n');
}

/** One line: `file:line:column CODE message` (logs, history, status). */
export function diagnosticLine(d: Pick<Diagnostic, 'location' | 'message'> & { code: string }): string {
  return `${formatPlace(d.location)} ${d.code} ${d.message}`;
}

export function formatJson(ds: readonly Diagnostic[]): string {
  return JSON.stringify(ds, null, 2);
}

/** GitHub Actions workflow commands: `::error file=...,line=...,col=...,title=CODE::message`. */
export function formatGithub(ds: readonly Diagnostic[]): string {
  const esc = (s: string): string => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const prop = (s: string): string => esc(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
  return ds
    .map((d) => {
      const level = d.severity === 'error' ? 'error' : d.severity === 'warning' ? 'warning' : 'notice';
      const loc = d.location ? `file=${prop(d.location.file)},line=${d.location.line},col=${d.location.column},` : '';
      return `::${level} ${loc}title=${prop(d.code)}::${esc(d.message)}`;
    })
    .join('\n');
}
