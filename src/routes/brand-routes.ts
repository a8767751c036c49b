import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Router } from 'express';
import { LOGO_TYPES } from '../config/branding-schema.ts';
import type { Config } from '../config/schema.ts';
import { BRAND_STYLESHEET_PATH, brandStylesheet, LOGO_PATH } from '../views/branding.ts';

// The branding's assets, served by Tessera itself so the page policy stays 'self': the brand
// stylesheet (the operator's colours over the one stylesheet) and a logo file of the operator's,
// read once at boot (a missing file stops the start, naming it).

export function createBrandRoutes({ config }: { config: Config }): Router {
  const router = Router();
  const css = brandStylesheet(config.branding);
  router.get(BRAND_STYLESHEET_PATH, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=3600').type('text/css').send(css);
  });
  const { logoFile } = config.branding;
  if (logoFile) {
    let logo: Buffer;
    try {
      logo = readFileSync(logoFile);
    } catch (error) {
      throw new Error(`branding.logoFile: cannot read ${logoFile} (${(error as Error).message})`);
    }
    const type = LOGO_TYPES[extname(logoFile).toLowerCase()]!;
    router.get(LOGO_PATH, (_req, res) => {
      // An SVG is an image here, never a document with scripts of its own.
      res.set('Cache-Control', 'public, max-age=3600').set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox").type(type).send(logo);
    });
  }
  return router;
}
