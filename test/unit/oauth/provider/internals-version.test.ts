import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { REVIEWED_OIDC_PROVIDER_VERSION } from '../../../../src/oauth/provider/internals.ts';

// The seam onto oidc-provider's internals holds for the version it was reviewed against only.

describe('the oidc-provider seam', () => {
  it('was reviewed against the installed oidc-provider', () => {
    const manifest = createRequire(import.meta.url).resolve('oidc-provider/package.json');
    const installed = (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
    const advice =
      `oidc-provider ${installed} is installed, but src/oauth/provider/internals.ts was reviewed against ${REVIEWED_OIDC_PROVIDER_VERSION}. ` +
      'Re-review internals.ts and the direct grants (src/oauth/grants/, each names the upstream file it mirrors) against the upstream diff ' +
      `(git diff v${REVIEWED_OIDC_PROVIDER_VERSION} v${installed} -- lib/), run the OAuth suites with TESSERA_DIRECT_GRANTS=false and true, then update REVIEWED_OIDC_PROVIDER_VERSION.`;
    expect({ installed, advice }).toEqual({ installed: REVIEWED_OIDC_PROVIDER_VERSION, advice });
  });

  it('is pinned in package.json to that exact version', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    expect(manifest.dependencies['oidc-provider']).toBe(REVIEWED_OIDC_PROVIDER_VERSION);
  });
});
