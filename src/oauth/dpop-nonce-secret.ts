import { hkdfSync } from 'node:crypto';

/**
 * The key of the DPoP nonces (RFC 9449 §8) oidc-provider hands out, derived from the
 * key-encryption secret (HKDF-SHA256, its own label): every node of one installation shares that
 * secret, so a nonce one node gave is accepted by all, and no further secret needs configuring.
 */
export function dpopNonceSecret(keyEncryptionSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', keyEncryptionSecret, 'tessera', 'tessera dpop nonce v1', 32));
}
