import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

// TOTP codes from an implementation that is not Tessera's: Debian's oathtool (package oathtool,
// .ci/run installs it). Tests never make codes with src/second-factors/totp.ts.

export const OATHTOOL = '/usr/bin/oathtool';

/** The TOTP code (SHA-1, 6 digits, 30 s) of a base32 secret at `atMs` (ms since the epoch), or now. */
export function oathtoolTotp(base32Secret: string, atMs?: number): string {
  if (!existsSync(OATHTOOL)) throw new Error(`${OATHTOOL} is missing: install Debian's oathtool (.ci/run does).`);
  const args = ['--totp', '-b', base32Secret, ...(atMs === undefined ? [] : ['--now', `@${Math.floor(atMs / 1000)}`])];
  return execFileSync(OATHTOOL, args, { encoding: 'utf8' }).trim();
}

/** The HOTP code of a hex key at a counter. */
export function oathtoolHotp(hexKey: string, counter: number): string {
  return execFileSync(OATHTOOL, ['--hotp', '-c', String(counter), hexKey], { encoding: 'utf8' }).trim();
}
