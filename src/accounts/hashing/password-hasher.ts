import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';

export interface Argon2Parameters {
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
}

export interface PasswordCheck {
  ok: boolean;
  /** True when the hash was made with other parameters and should be replaced now. */
  needsRehash: boolean;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<PasswordCheck>;
  /**
   * A hash of a random password made with the current parameters (the same one every call): a
   * sign-in for a name no account has verifies against it, so that it does the same work as one
   * with a wrong password (docs/design/sign-in-throttling.md).
   */
  decoyHash(): Promise<string>;
}

/** argon2id with the given parameters. */
export function createPasswordHasher(parameters: Argon2Parameters): PasswordHasher {
  const options = {
    type: argon2.argon2id,
    memoryCost: parameters.memoryKiB,
    timeCost: parameters.timeCost,
    parallelism: parameters.parallelism,
  } as const;
  let decoy: Promise<string> | undefined;

  return {
    hash: (password) => argon2.hash(password, options),
    async verify(hash, password) {
      let ok: boolean;
      try {
        ok = await argon2.verify(hash, password);
      } catch {
        // A malformed stored hash never authenticates.
        return { ok: false, needsRehash: false };
      }
      return { ok, needsRehash: ok && argon2.needsRehash(hash, options) };
    },
    decoyHash() {
      decoy ??= argon2.hash(randomBytes(32).toString('base64url'), options);
      return decoy;
    },
  };
}
