/**
 * Stage: source. What every source (a directory, a Git commit) hands to the parser.
 */
export interface SourceFile {
  /** Path relative to the policy root, forward slashes. */
  path: string;
  text: string;
}

export interface PolicySource {
  /** Revision id: a commit SHA for Git, `dir:<content hash>` for a plain directory. */
  revision: string;
  files: SourceFile[];
}

/** Bounds on hostile or accidental input; exceeding them is a diagnostic, never a crash. */
export const SOURCE_LIMITS = {
  maxFileBytes: 2 * 1024 * 1024,
  maxFiles: 50_000,
  maxTotalBytes: 64 * 1024 * 1024,
};

export function isPolicyFile(name: string): boolean {
  return name.endsWith('.yaml') || name.endsWith('.yml');
}
