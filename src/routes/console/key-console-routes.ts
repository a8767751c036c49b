import { Router } from 'express';
import { sendPage } from '../../http/pages.ts';
import type { SigningKeyService } from '../../oauth/signing-key-service.ts';
import { adminActor } from '../admin/admin-requests.ts';
import { consoleViewer } from './console-requests.ts';
import { keysPage } from './key-pages.ts';

/** The console's page on the signing keys: /admin/keys (list, rotate). */
export function createKeyConsoleRoutes({ signingKeys }: { signingKeys: SigningKeyService }): Router {
  const router = Router();

  router.get('/admin/keys', async (req, res) => {
    const keys = await signingKeys.list();
    const current = keys.find((k) => k.state === 'current');
    const rotated =
      req.query.done === 'rotated' && current
        ? `Rotated: ${current.kid} signs new tokens${req.query.announced === 'yes' ? ' on every node' : '; nodes that did not hear of it sign with it after a restart'}.`
        : undefined;
    sendPage(res, 200, keysPage({ viewer: consoleViewer(res), keys, ...(rotated ? { notice: rotated } : {}) }));
  });

  router.post('/admin/keys/rotate', async (req, res) => {
    const rotation = await signingKeys.rotate(adminActor(req));
    res.redirect(303, `/admin/keys?done=rotated&announced=${rotation.announced ? 'yes' : 'no'}`);
  });

  return router;
}
