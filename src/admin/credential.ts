/**
 * Admin: the admin credential, a random bearer token in <state-dir>/admin.token (mode 0600). `chancery serve`
 * creates it on first start; `chancery rotate-root` and `status` read it from the same `--state-dir` default, so
 * whoever can read the state directory (and so the CA key) can drive the admin API, and nobody else.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, constants, fstatSync, fsyncSync, linkSync, mkdirSync, openSync } from 'node:fs';
import { readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

export const CREDENTIAL_FILE = 'admin.token';
/** base64url of at least 32 random bytes. */
const STRONG = /^[A-Za-z0-9_-]{43,}$/;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export class AdminCredential {
  private readonly hash: Buffer;

  private constructor(
    private readonly token: string,
    readonly file: string,
  ) {
    this.hash = digest(token);
  }

  /** Reads the credential, creating it first when the state directory has none. */
  static open(stateDir: string): AdminCredential {
    const file = path.join(stateDir, CREDENTIAL_FILE);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    createOnce(file, `${randomBytes(32).toString('base64url')}\n`);
    return AdminCredential.load(file);
  }

  /** The CLI's view: undefined when the state directory holds no credential. */
  static read(stateDir: string): AdminCredential | undefined {
    const file = path.join(stateDir, CREDENTIAL_FILE);
    try {
      return AdminCredential.load(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private static load(file: string): AdminCredential {
    // O_NOFOLLOW: the credential is this file, not whatever a symlink in its place points at.
    const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error(`${file}: not a regular file`);
      if ((st.mode & 0o077) !== 0) throw new Error(`${file}: readable by others (chmod 600 ${file})`);
      const token = readFileSync(fd, 'utf8').trim();
      if (!STRONG.test(token)) {
        const want = 'want 43+ base64url characters; remove it to have a new one made';
        throw new Error(`${file}: not an admin credential (${want})`);
      }
      return new AdminCredential(token, file);
    } finally {
      closeSync(fd);
    }
  }

  /** The value of an `Authorization` header carrying this credential. */
  get authorization(): string {
    return `Bearer ${this.token}`;
  }

  /** Whether an `Authorization` header carries this credential (constant time). */
  matches(header: string | undefined): boolean {
    const m = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
    return m !== null && timingSafeEqual(digest(m[1]), this.hash);
  }
}

/**
 * Writes `text` to `file` unless it exists: a private temporary file, flushed, then hard-linked into place. link(2)
 * never replaces, so two processes starting at once agree on one credential and nobody sees a half-written file.
 */
function createOnce(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
    syncDir(path.dirname(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
