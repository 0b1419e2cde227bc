#!/usr/bin/env node
// The `chancery` command. Runs the TypeScript sources directly through tsx's loader.
import { register } from 'tsx/esm/api';

// `chancery ... | head` closes stdout early: that is not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
