import { describe, expect, it } from '@jest/globals';
import { localPath } from '../../../src/http/local-path.ts';

describe('localPath (where a sign-in leads afterwards)', () => {
  it('keeps a path on this site, with its query', () => {
    expect(localPath('/settings/security')).toBe('/settings/security');
    expect(localPath('/admin/users?q=ada&limit=10')).toBe('/admin/users?q=ada&limit=10');
  });

  it('never leads to another site: schemes, //host, /\\host, spaces and control characters fall back', () => {
    for (const value of ['https://evil.example/', '//evil.example/', '/\\evil.example/', 'javascript:alert(1)', 'settings', '/a b', '/a\nb', '/é', '', undefined, 42, ['/x']]) {
      expect(localPath(value)).toBe('/settings/tokens');
    }
  });
});
