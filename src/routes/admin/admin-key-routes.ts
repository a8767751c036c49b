import { Router } from 'express';
import { methodNotAllowed } from '../../http/refusals.ts';
import type { SigningKeyService } from '../../oauth/signing-key-service.ts';
import type { SigningKeyInfo } from '../../oauth/signing-keys.ts';
import { adminActor, isoOrNull } from './admin-requests.ts';

const KEYS = '/api/v1/admin/keys';

function describeKey(key: SigningKeyInfo) {
  return { kid: key.kid, alg: key.alg, state: key.state, created_at: key.createdAt.toISOString(), retire_after: isoOrNull(key.retireAfter) };
}

/**
 * The signing keys, for administrators: list them, and rotate (a new current key, announced to
 * every node at once; the old one stays published until the tokens it signed expire).
 */
export function createAdminKeyRoutes({ signingKeys }: { signingKeys: SigningKeyService }): Router {
  const router = Router();

  router.get(KEYS, async (_req, res, next) => {
    try {
      res.set('Cache-Control', 'no-store').json({ keys: (await signingKeys.list()).map(describeKey) });
    } catch (error) {
      next(error);
    }
  });
  router.all(KEYS, methodNotAllowed(['GET']));

  router.post(`${KEYS}/rotate`, async (req, res, next) => {
    try {
      const rotation = await signingKeys.rotate(adminActor(req));
      res.status(201).set('Cache-Control', 'no-store').json({
        kid: rotation.kid,
        retiring: rotation.retiring.map(describeKey),
        pruned: rotation.pruned,
        announced: rotation.announced,
      });
    } catch (error) {
      next(error);
    }
  });
  router.all(`${KEYS}/rotate`, methodNotAllowed(['POST']));

  return router;
}
