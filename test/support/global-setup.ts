import { Socket } from 'node:net';
// Jest loads this file outside its module system, so it imports nothing of the project's;
// these defaults must match test/support/services.ts.
const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Fails the whole run at once, with a plain message, when a service the tests need is down. */
function reachable(url: string, defaultPort: number): Promise<string | null> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (problem: string | null) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(2000, () => done('timed out after 2 s'));
    socket.once('error', (error) => done((error as NodeJS.ErrnoException).code ?? error.message));
    socket.connect(Number(port || defaultPort), hostname.replace(/^\[|\]$/g, ''), () => done(null));
  });
}

export default async function globalSetup(): Promise<void> {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  if (major < 22 || (major === 22 && minor < 12)) {
    throw new Error(
      `The tests run on Node ${process.versions.node}; Tessera needs Node >= 22.12. ` +
        '`npm ci` installs Node 24 into node_modules/.bin (the "node" devDependency): run the tests through `npm test`.',
    );
  }
  const checks = await Promise.all([
    reachable(TEST_DATABASE_URL, 5432).then((p) => (p ? `PostgreSQL at ${new URL(TEST_DATABASE_URL).host} cannot be reached (${p}); start it or set TEST_DATABASE_URL` : null)),
    reachable(TEST_REDIS_URL, 6379).then((p) => (p ? `Redis at ${new URL(TEST_REDIS_URL).host} cannot be reached (${p}); start it or set TEST_REDIS_URL` : null)),
  ]);
  const problems = checks.filter((p): p is string => p !== null);
  if (problems.length) {
    throw new Error(`The integration tests need real services:\n  - ${problems.join('\n  - ')}`);
  }
}
