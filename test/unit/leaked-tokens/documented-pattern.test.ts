import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tokenFormat, type TokenKind } from '../../../src/credentials/token-format.ts';

// What docs/leaked-tokens.md tells scanners must hold for the tokens Tessera makes: its regex
// finds them (and only whole tokens), its worked example is a valid token, and its Python checker
// (an implementation of the checksum independent of Tessera's, run by Debian's python3, which
// .ci/run installs with aiosmtpd) agrees with Tessera on valid and mistyped tokens.

const page = readFileSync(new URL('../../../docs/leaked-tokens.md', import.meta.url), 'utf8');

/** The body of the first fenced block of this language in the page. */
function block(language: string): string {
  const found = new RegExp('```' + language + '\\n([\\s\\S]*?)\\n```').exec(page);
  if (!found) throw new Error(`docs/leaked-tokens.md has no \`\`\`${language} block`);
  return found[1]!;
}

const KINDS: TokenKind[] = ['personal_access_token', 'session'];
const tokens = KINDS.flatMap((kind) => Array.from({ length: 300 }, () => tokenFormat.generate(kind)));

/** The token with one character of its random part changed: the checksum no longer matches. */
function mistyped(token: string): string {
  const at = 8 + (token.charCodeAt(12) % 32);
  return token.slice(0, at) + (token[at] === 'x' ? 'y' : 'x') + token.slice(at + 1);
}

describe('the token pattern documented for secret scanners', () => {
  const pattern = block('regex').trim();

  it('matches every token Tessera makes, whole, and finds them in text', () => {
    const whole = new RegExp(`^${pattern}$`);
    const bounded = new RegExp(`\\b${pattern}\\b`, 'g');
    for (const token of tokens) {
      expect(token).toMatch(whole);
      expect(`export TOKEN="${token}" # ci`.match(bounded)).toEqual([token]);
      expect(`token=${token}`.match(bounded)).toEqual([token]);
    }
    // Not a token: too short, too long, another prefix, a letter outside base62.
    const [sample] = tokens;
    for (const near of [sample!.slice(0, -1), `${sample!}a`, sample!.replace('tsr_', 'tsx_'), `${sample!.slice(0, 20)}-${sample!.slice(21)}`]) {
      expect(`x ${near} y`.match(bounded)).toBeNull();
    }
  });

  it('gives a worked example that is a valid personal access token', () => {
    const example = /the token: `(tsr_pat_[0-9A-Za-z]+)`/.exec(page)?.[1];
    expect(example).toBe('tsr_pat_7dKq2Rb9XvL3mW8pZt5Nc1Hf6Ys4Ju0E3YdMbg');
    expect(tokenFormat.parse(example!)).toBe('personal_access_token');
    expect(tokenFormat.parse(mistyped(example!))).toBeNull();
  });

  it("has a checker that agrees with Tessera's on valid and mistyped tokens", async () => {
    const inputs = [...tokens, ...tokens.map(mistyped), 'tsr_pat_short', 'ghp_0123456789'];
    const output = await new Promise<string>((resolve, reject) => {
      const child = execFile('/usr/bin/python3', ['-c', block('python')], { encoding: 'utf8' }, (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(stdout)));
      child.stdin!.end(inputs.join('\n') + '\n');
    });
    const verdicts = output.trim().split('\n');
    expect(verdicts).toEqual(inputs.map((value) => (tokenFormat.parse(value) !== null ? 'valid' : 'invalid')));
    expect(verdicts.filter((v) => v === 'valid')).toHaveLength(tokens.length);
  });
});
