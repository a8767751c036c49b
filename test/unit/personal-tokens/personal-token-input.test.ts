import { describe, expect, it } from '@jest/globals';
import { createPersonalTokenSchema, disguisingCharacterIn } from '../../../src/personal-tokens/personal-token-input.ts';
import type { User } from '../../../src/accounts/user.ts';

// Token names that could pass for other names: bidirectional controls and invisible characters
// are refused, with the character named; ordinary names in any script pass.
describe('token names that could disguise themselves', () => {
  const user = { id: 'u1', username: 'archivist', allowedScopes: ['read'] } as unknown as User;
  const schema = createPersonalTokenSchema(user, { scopeCatalog: { read: 'Read' }, maxExpiryDays: 365, allowNoExpiry: false });
  const nameIssues = (name: string) => {
    const result = schema.safeParse({ name, scopes: ['read'], expiresInDays: 30 });
    return result.success ? [] : result.error.issues.filter((issue) => issue.path[0] === 'name').map((issue) => issue.message);
  };

  it.each([
    ['U+202E right-to-left override', 'ci-\u202Edaolpu', 'U+202E (a right-to-left or left-to-right control)'],
    ['U+202A left-to-right embedding', '\u202Aci-upload', 'U+202A (a right-to-left or left-to-right control)'],
    ['U+202B right-to-left embedding', 'ci\u202Bupload', 'U+202B (a right-to-left or left-to-right control)'],
    ['U+202C pop directional formatting', 'ci\u202Cupload', 'U+202C (a right-to-left or left-to-right control)'],
    ['U+202D left-to-right override', 'ci\u202Dupload', 'U+202D (a right-to-left or left-to-right control)'],
    ['U+2066 left-to-right isolate', 'ci\u2066upload', 'U+2066 (a right-to-left or left-to-right control)'],
    ['U+2067 right-to-left isolate', 'ci\u2067upload', 'U+2067 (a right-to-left or left-to-right control)'],
    ['U+2068 first strong isolate', 'ci\u2068upload', 'U+2068 (a right-to-left or left-to-right control)'],
    ['U+2069 pop directional isolate', 'ci-upload\u2069', 'U+2069 (a right-to-left or left-to-right control)'],
    ['U+200F right-to-left mark', 'ci\u200Fupload', 'U+200F (a right-to-left or left-to-right control)'],
    ['U+061C Arabic letter mark', 'ci\u061Cupload', 'U+061C (a right-to-left or left-to-right control)'],
    ['U+200B zero-width space', 'ci\u200Bupload', 'U+200B (an invisible character)'],
    ['U+200D zero-width joiner', 'ci\u200Dupload', 'U+200D (an invisible character)'],
    ['U+FEFF zero-width no-break space', 'ci\uFEFFupload', 'U+FEFF (an invisible character)'],
    ['U+00AD soft hyphen', 'ci\u00ADupload', 'U+00AD (an invisible character)'],
    ['U+2028 line separator', 'ci\u2028upload', 'U+2028 (an invisible character)'],
    ['U+3164 Hangul filler', 'ci\u3164upload', 'U+3164 (an invisible character)'],
    ['U+E0041 tag letter A', 'ci-upload\u{E0041}', 'U+E0041 (an invisible character)'],
  ])('refuses %s, naming it', (_what, name, named) => {
    expect(disguisingCharacterIn(name)).toBe(named);
    expect(nameIssues(name)).toEqual([`must not contain ${named}: such characters can make a name look like another one`]);
  });

  it.each(['ci-upload', 'Laptop upload script', 'Überweisung', 'رفع البيانات', 'アップロード', 'deploy 🚀', 'a.b_c-d (2)'])('accepts %s', (name) => {
    expect(disguisingCharacterIn(name)).toBeNull();
    expect(nameIssues(name)).toEqual([]);
  });

  it('keeps refusing control characters with their own message', () => {
    expect(nameIssues('ci\u0007upload')).toEqual(['must not contain control characters']);
  });
});
