import { describe, expect, it } from '@jest/globals';
import { formDecode, parseBasicAuthorization } from '../../../src/credentials/basic-auth.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('parseBasicAuthorization', () => {
  it('splits at the first colon, leaving both parts as sent', () => {
    expect(parseBasicAuthorization(`Basic ${b64('records-api:s3:cret')}`)).toEqual({ id: 'records-api', secret: 's3:cret' });
    expect(parseBasicAuthorization(`Basic ${b64('odd+id:p%40ss')}`)).toEqual({ id: 'odd+id', secret: 'p%40ss' });
    expect(parseBasicAuthorization(`Basic ${b64(':')}`)).toEqual({ id: '', secret: '' });
  });

  it('refuses what is not Basic credentials', () => {
    for (const header of [undefined, '', 'Bearer abc', `Basic ${b64('no-colon')}`, 'Basic', 'Basic !!!']) {
      expect({ header, parsed: parseBasicAuthorization(header) }).toEqual({ header, parsed: undefined });
    }
  });

  it('leniently takes any case, any spacing and loose base64; strictly only what oidc-provider parses', () => {
    const encoded = b64('records-api:secret');
    const cases: Array<[string, boolean, boolean]> = [
      // header, lenient accepts, strict accepts
      [`Basic ${encoded}`, true, true],
      [`basic ${encoded}`, true, true],
      [`BASIC ${encoded}`, true, true],
      [`Basic  ${encoded}`, true, false],
      [`Basic ${encoded} `, true, false],
      [`Basic\t${encoded}`, true, false],
      [`Basic ${b64('ab:c').replace(/=+$/, '')}`, true, false],
      [`Basic ${b64('ab:c')}=`, true, false],
    ];
    for (const [header, lenient, strict] of cases) {
      expect({ header, lenient: parseBasicAuthorization(header) !== undefined, strict: parseBasicAuthorization(header, { strict: true }) !== undefined }).toEqual({ header, lenient, strict });
    }
  });
});

describe('formDecode', () => {
  it('decodes RFC 6749 §2.3.1 form-encoding, and refuses what is not', () => {
    expect(formDecode('odd+id')).toBe('odd id');
    expect(formDecode('p%40ss%2Bword')).toBe('p@ss+word');
    expect(formDecode('plain')).toBe('plain');
    expect(formDecode('100%')).toBeUndefined();
  });
});
