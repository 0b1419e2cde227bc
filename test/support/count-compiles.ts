/**
 * Preloaded into a `chancery` child process (`node --import tsx --import <this> bin/chancery.mjs ...`): on exit it
 * logs how many revisions the process compiled, so a test can assert work done by one compile.
 */
import { compileCount } from '../../src/compiler.js';

process.on('exit', () => {
  process.stderr.write(JSON.stringify({ msg: 'compile count', compiles: compileCount() }) + '\n');
});
