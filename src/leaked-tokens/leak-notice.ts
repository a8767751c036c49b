import type { EndedCredential } from './leak-reports.ts';

// The e-mail that tells an owner what a leaked-token report ended: what, where it was found, what
// to do. Never a token's value: a personal token by its name and hint, as the settings page shows it.

/** Credentials listed in one message at most; the security log has them all. */
const MAX_LISTED = 20;

function describe(credential: EndedCredential): string {
  const what =
    credential.kind === 'session' ? 'An API session token'
    : credential.kind === 'personal_access_token' ? `The personal access token "${credential.name ?? '?'}" (${credential.hint ?? ''}…)`
    : `A token of your login to ${credential.clientId ?? 'an app'} (the whole login ended)`;
  const where = credential.url ? `found at ${credential.url}` : 'found in public';
  return `- ${what}, ${where} (${credential.source.replaceAll('_', ' ') || 'unknown place'}; reported by ${credential.reporter})`;
}

export function leakNotice(product: string, username: string, ended: readonly EndedCredential[], issuer: string): { subject: string; text: string } {
  const listed = ended.slice(0, MAX_LISTED).map(describe);
  if (ended.length > MAX_LISTED) listed.push(`- and ${ended.length - MAX_LISTED} more`);
  const tokens = ended.some((credential) => credential.kind === 'personal_access_token');
  return {
    subject: `${product}: ${ended.length === 1 ? 'a token of yours was' : 'tokens of yours were'} found in public and revoked`,
    text: [
      `A secret scanner found ${ended.length === 1 ? 'a credential' : 'credentials'} of the ${product} account "${username}" where others can read ${ended.length === 1 ? 'it' : 'them'}, and ${product} revoked ${ended.length === 1 ? 'it' : 'them'} at once:`,
      '',
      ...listed,
      '',
      `Remove ${ended.length === 1 ? 'it' : 'them'} from there (and from the history of a repository, if committed).`,
      ...(tokens ? [`Scripts that used a revoked token need a new one: ${issuer}/settings/tokens`] : []),
      `Your security log lists what happened: ${issuer}/settings/security`,
      '',
    ].join('\n'),
  };
}
