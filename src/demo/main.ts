/**
 * DEMO ONLY: runs the demo repository API (resource-server.ts) against a Tessera; its environment
 * variables are documented in docs/resource-servers.md (A demo repository API).
 */
import { z } from 'zod';
import { createTesseraVerifier } from '@tessera/verifier';
import { createDemoRepository } from './resource-server.ts';

const envSchema = z.object({
  TESSERA_ISSUER: z.url({ protocol: /^https?$/ }),
  DEMO_CLIENT_ID: z.string().min(1),
  DEMO_CLIENT_SECRET: z.string().min(1),
  PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  HOST: z.string().min(1).default('127.0.0.1'),
  DEMO_AUDIENCE: z.string().min(1).optional(),
  DEMO_ALLOW_QUERY_TOKEN_OVER_HTTP: z.enum(['true', 'false']).default('false'),
});

const parsed = envSchema.safeParse(process.env);
if (!parsed.success) {
  for (const issue of parsed.error.issues) console.error(`demo: ${issue.path.join('.')}: ${issue.message}`);
  process.exit(78); // EX_CONFIG
}
const env = parsed.data;

const verifier = createTesseraVerifier({
  issuer: env.TESSERA_ISSUER,
  clientId: env.DEMO_CLIENT_ID,
  clientSecret: env.DEMO_CLIENT_SECRET,
  ...(env.DEMO_AUDIENCE ? { audience: env.DEMO_AUDIENCE } : {}),
  allowQueryTokenOverHttp: env.DEMO_ALLOW_QUERY_TOKEN_OVER_HTTP === 'true',
  onUnavailable: (error) => console.error(`demo: cannot check a credential: ${error.message}`),
});
const server = createDemoRepository({ verifier }).listen(env.PORT, env.HOST, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : env.PORT;
  process.stdout.write(`Demo repository (in memory, for trying Tessera out) on http://${env.HOST}:${port}, checking credentials with ${env.TESSERA_ISSUER}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
