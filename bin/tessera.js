#!/usr/bin/env node
// The `tessera` command. It runs the compiled CLI in dist/ (built by `npm ci` through the
// package's prepare script, and by `npm run build`).
// The compiled package needs Node.js 22.12 or later (package.json engines); an older Node crashes
// in the embedded database instead of saying so.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(`tessera: needs Node.js 22.12 or later, and this is ${process.version}. In the project directory, run it as \`npx tessera\` (npm puts the project's own Node 24 first).`);
  process.exit(1);
}
import('../dist/cli/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli/main.js')) {
    console.error('tessera: the compiled CLI is missing; run `npm run build` (or `npm ci`) first.');
    process.exit(1);
  }
  throw error;
});
