#!/usr/bin/env node
// The `tessera` command. It runs the compiled CLI in dist/ (built by `npm ci` through the
// package's prepare script, and by `npm run build`).
import('../dist/cli/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli/main.js')) {
    console.error('tessera: the compiled CLI is missing; run `npm run build` (or `npm ci`) first.');
    process.exit(1);
  }
  throw error;
});
