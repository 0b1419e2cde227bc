/**
 * Workload key pairs generated ahead, on libuv's thread pool, while the main thread signs: issuing a certificate
 * then costs a signature, not a key generation too, and a rotation of many identities uses both cores. Keys are
 * used once and never leave the process; the pool is small (a burst beyond it waits for generation).
 */
import { generateKeyPair } from 'node:crypto';
import { keyMaterial, type KeyMaterial } from './x509.js';

export class KeyPool {
  private readonly ready: KeyMaterial[] = [];
  private readonly waiting: { resolve: (k: KeyMaterial) => void; reject: (e: Error) => void }[] = [];
  private inFlight = 0;

  /** `size`: keys kept ready; `parallel`: generations running at once (libuv's pool has 4 threads by default). */
  constructor(
    private readonly size = 64,
    private readonly parallel = 4,
  ) {}

  take(): Promise<KeyMaterial> {
    const k = this.ready.pop();
    const p = k ? Promise.resolve(k) : new Promise<KeyMaterial>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.refill();
    return p;
  }

  private refill(): void {
    while (this.inFlight < this.parallel && this.ready.length + this.inFlight < this.size + this.waiting.length) {
      this.inFlight++;
      generateKeyPair('ec', { namedCurve: 'P-256' }, (err, publicKey, privateKey) => {
        this.inFlight--;
        if (err) {
          for (const w of this.waiting.splice(0)) w.reject(err);
          return;
        }
        const k = keyMaterial({ publicKey, privateKey });
        const w = this.waiting.shift();
        if (w) w.resolve(k);
        else this.ready.push(k);
        this.refill();
      });
    }
  }
}
