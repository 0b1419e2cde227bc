/**
 * Diagnostics: the one way every stage reports a user's mistake. Stages never throw for bad input; they return
 * their value together with the diagnostics they found. Exceptions are for bugs and system faults only.
 */
import { CODES, type DiagnosticCode } from './codes.js';

export type Severity = 'error' | 'warning' | 'info';

/** Where something came from: a position in a policy file at a revision. */
export interface Origin {
  /** Path relative to the policy root, with forward slashes. */
  file: string;
  /** 1-based line and column. */
  line: number;
  column: number;
  /** Revision id (a commit SHA, or a content hash for a plain directory). */
  revision?: string;
}

export interface Diagnostic {
  /** Stable code from the catalog in codes.ts, e.g. CH0201. */
  code: DiagnosticCode;
  severity: Severity;
  message: string;
  location?: Origin;
  /** Field path inside the document, e.g. `spec.ports[0].number`. */
  path?: string;
  /** The policy object the diagnostic is about, `Kind namespace/name`. */
  object?: string;
  related?: { message: string; location?: Origin }[];
}

export interface Result<T> {
  value: T;
  diagnostics: Diagnostic[];
}

/** Collects diagnostics; severity defaults to the catalog's. */
export class Diagnostics {
  readonly items: Diagnostic[] = [];

  report(
    code: DiagnosticCode,
    message: string,
    at?: { location?: Origin; path?: string; object?: string; related?: Diagnostic['related']; severity?: Severity },
  ): void {
    this.items.push({
      code,
      severity: at?.severity ?? CODES[code].severity,
      message,
      ...(at?.location ? { location: at.location } : {}),
      ...(at?.path ? { path: at.path } : {}),
      ...(at?.object ? { object: at.object } : {}),
      ...(at?.related && at.related.length > 0 ? { related: at.related } : {}),
    });
  }

  addAll(ds: Iterable<Diagnostic>): void {
    for (const d of ds) this.items.push(d);
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

/** Sorts diagnostics by file, line, column, code so output is stable whatever the processing order. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => {
    const fa = a.location?.file ?? '';
    const fb = b.location?.file ?? '';
    if (fa !== fb) return fa < fb ? -1 : 1;
    const la = a.location?.line ?? 0;
    const lb = b.location?.line ?? 0;
    if (la !== lb) return la - lb;
    const ca = a.location?.column ?? 0;
    const cb = b.location?.column ?? 0;
    if (ca !== cb) return ca - cb;
    return a.code < b.code ? -1 : a.code > b.code ? 1 : a.message < b.message ? -1 : a.message > b.message ? 1 : 0;
  });
}

/** `file:line:column`, or `<mesh>` for what no policy line stands for. */
export function formatPlace(o: Pick<Origin, 'file' | 'line' | 'column'> | undefined): string {
  return o ? `${o.file}:${o.line}:${o.column}` : '<mesh>';
}

export function formatOrigin(o: Origin | undefined): string {
  if (!o) return '<mesh>';
  return `${formatPlace(o)}${o.revision ? ` @ ${o.revision.slice(0, 12)}` : ''}`;
}
