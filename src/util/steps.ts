/**
 * Long computations (reading a tree, building the model, compiling) are written once, as generators that yield
 * where pausing is safe, and run either to completion at once (CLI, tests) or in slices that give the event loop
 * a turn (the server, which must keep answering proxies meanwhile).
 */

/** Runs `steps` to completion without pausing. */
export function runSteps<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs `steps`, yielding to the event loop whenever it has worked for `sliceMs`. */
export async function runStepsInSlices<T>(steps: Generator<void, T>, sliceMs = 10): Promise<T> {
  let sliceStart = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}
