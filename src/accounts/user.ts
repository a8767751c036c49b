import { z } from 'zod';

export interface User {
  id: string;
  username: string;
  email: string | null;
  allowedScopes: string[];
  disabled: boolean;
  createdAt: Date;
  updatedAt: Date;
  passwordChangedAt: Date;
}

/**
 * What the token paths need of a user, read-only: served from the user cache's frozen copy
 * without building a User (see user-cache.ts, peekUser).
 */
export interface UserStanding {
  readonly id: string;
  readonly username: string;
  /** Introspection of a personal token tells it, for the API-key pair's check. */
  readonly email: string | null;
  readonly allowedScopes: readonly string[];
  readonly disabled: boolean;
}

/** What the user store keeps beyond the public profile; never leaves the accounts service. */
export interface UserWithSecret extends User {
  /** Null for an account without a local password (made by an identity provider). */
  passwordHash: string | null;
}

export const usernameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, { message: 'must be 1–64 characters: letters, digits and . _ @ -, starting with a letter or digit' });

export const emailSchema = z.email({ message: 'must be an e-mail address' }).max(254);
