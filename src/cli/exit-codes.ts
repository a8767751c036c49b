/** The CLI's exit codes, documented in docs/cli.md. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** login, token, whoami: not logged in, or the saved login expired or was revoked (run `tessera login`). */
  loginRequired: 67,
  /** login, token, whoami, logout: the issuer cannot be reached. */
  issuerUnreachable: 69,
  /** login: the code expired before it was approved. */
  codeExpired: 75,
  /** login: the person denied the login in the browser. */
  accessDenied: 77,
  config: 78,
} as const;
