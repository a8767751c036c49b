import { Router } from 'express';
import { z } from 'zod';
import { defineOperation, route } from '../../http/api-operation.ts';
import { errorResponse } from '../../http/common-responses.ts';
import { methodNotAllowed } from '../../http/refusals.ts';
import type { SigningKeyService } from '../../oauth/signing-key-service.ts';
import type { SigningKeyInfo } from '../../oauth/signing-keys.ts';
import { ADMIN_CREDENTIALS, ADMIN_DESCRIPTION, ADMIN_FAILURES, isoDateOrNull } from './admin-operations.ts';
import { adminActor, isoOrNull } from './admin-requests.ts';

const KEYS = '/api/v1/admin/keys';

const keySchema = z.object({
  kid: z.string(),
  alg: z.string(),
  state: z.enum(['current', 'retiring']).meta({ description: '`current` signs new tokens; `retiring` is still published until `retire_after`.' }),
  created_at: z.iso.datetime(),
  retire_after: isoDateOrNull,
});
const TAG = 'Admin: signing keys';

export const listKeysOperation = defineOperation({
  method: 'get', path: KEYS, operationId: 'adminListSigningKeys', summary: 'The signing keys, current and retiring', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  responses: { 200: { description: 'The keys.', body: z.object({ keys: z.array(keySchema) }) }, ...ADMIN_FAILURES },
});

export const rotateKeysOperation = defineOperation({
  method: 'post', path: `${KEYS}/rotate`, operationId: 'adminRotateSigningKey', summary: 'Make a new current signing key (the old one is published until the tokens it signed expire)', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  responses: {
    201: {
      description: 'Rotated.',
      body: z.object({
        kid: z.string().meta({ description: 'The new current key.' }),
        retiring: z.array(keySchema),
        pruned: z.array(z.string()).meta({ description: 'Keys past their retirement, deleted.' }),
        announced: z.boolean().meta({ description: 'Whether every running node was told at once (otherwise they sign with it after a restart).' }),
      }),
    },
    409: errorResponse('The stored keys cannot be decrypted with this TESSERA_KEY_SECRET.'),
    ...ADMIN_FAILURES,
  },
});

function describeKey(key: SigningKeyInfo): z.input<typeof keySchema> {
  return { kid: key.kid, alg: key.alg, state: key.state, created_at: key.createdAt.toISOString(), retire_after: isoOrNull(key.retireAfter) };
}

/**
 * The signing keys, for administrators: list them, and rotate (a new current key, announced to
 * every node at once; the old one stays published until the tokens it signed expire).
 */
export function createAdminKeyRoutes({ signingKeys }: { signingKeys: SigningKeyService }): Router {
  const router = Router();

  route(router, listKeysOperation, [], async (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ keys: (await signingKeys.list()).map(describeKey) });
  });
  router.all(KEYS, methodNotAllowed(['GET']));

  route(router, rotateKeysOperation, [], async (req, res) => {
    const rotation = await signingKeys.rotate(adminActor(req));
    res.status(201).set('Cache-Control', 'no-store').json({
      kid: rotation.kid,
      retiring: rotation.retiring.map(describeKey),
      pruned: rotation.pruned,
      announced: rotation.announced,
    });
  });
  router.all(`${KEYS}/rotate`, methodNotAllowed(['POST']));

  return router;
}
