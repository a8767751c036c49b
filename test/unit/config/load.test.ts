import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, readRedisTls, redactConfig, usesRedis } from '../../../src/config/load.ts';
import { createTestCa, type CertificateFiles, type TestCa } from '../../support/test-certificates.ts';
import { fromDeclared } from '../../../src/clients/client.ts';

describe('loadConfig', () => {
  it('gives the documented defaults with an empty environment', () => {
    const config = loadConfig({ env: {} });
    expect(config.issuer).toBe('http://localhost:8080');
    expect(config.http.port).toBe(8080);
    expect(config.database.url).toBeNull();
    expect(config.redis.url).toBeNull();
    expect(config.passwords.argon2).toEqual({ memoryKiB: 19456, timeCost: 2, parallelism: 1 });
  });

  it('reads the second-factor settings: keys (a secret, redacted), the policy, the limits', () => {
    expect(loadConfig({ env: {} }).secondFactor).toEqual({ requiredForScopes: [], failuresPerAccount: 5, failureWindowSeconds: 900, pendingSeconds: 300 });
    expect(loadConfig({ env: {} }).secrets.secondFactorKeys).toBeNull();
    const config = loadConfig({ env: { TESSERA_SECOND_FACTOR_KEYS: `${'n'.repeat(32)},${'o'.repeat(32)}`, TESSERA_SECOND_FACTOR_REQUIRED_FOR_SCOPES: 'admin, deposit:actions' } });
    expect(config.secrets.secondFactorKeys).toEqual(['n'.repeat(32), 'o'.repeat(32)]);
    expect(config.secondFactor.requiredForScopes).toEqual(['admin', 'deposit:actions']);
    expect(JSON.stringify(redactConfig(config))).not.toContain('n'.repeat(32));
    expect(() => loadConfig({ env: { TESSERA_SECOND_FACTOR_KEYS: 'short' } })).toThrow(/TESSERA_SECOND_FACTOR_KEYS \(secrets\.secondFactorKeys\.0\): each must be at least 32 characters/);
  });

  it('lets the environment override defaults', () => {
    const config = loadConfig({
      env: { ISSUER: 'https://auth.example.org/', TESSERA_KEY_SECRET: 'k'.repeat(32), TESSERA_COOKIE_KEYS: `${'a'.repeat(32)}, ${'b'.repeat(32)}`, PORT: '9000', REDIS_URL: 'redis://r:6379', TESSERA_REDIS_PREFIX: 'x:', TESSERA_TRUST_PROXY: '1' },
    });
    expect(config.issuer).toBe('https://auth.example.org');
    expect(config.http.port).toBe(9000);
    expect(config.redis.url).toBe('redis://r:6379');
    expect(config.redis.keyPrefix).toBe('x:');
    expect(config.http.trustProxy).toBe(1);
    expect(config.secrets.cookieKeys).toEqual(['a'.repeat(32), 'b'.repeat(32)]);
  });

  it('lets the issuer follow PORT when nobody names the issuer', async () => {
    expect(loadConfig({ env: { PORT: '19080' } }).issuer).toBe('http://localhost:19080');
    expect(loadConfig({ env: { PORT: '19080', ISSUER: 'http://auth.example.org:8000' } }).issuer).toBe('http://auth.example.org:8000');
    expect(loadConfig({ env: { PORT: '19080' }, overrides: { issuer: 'http://localhost:8080' } }).issuer).toBe('http://localhost:8080');
    // Port 0 (any free port) names no port to follow.
    expect(loadConfig({ env: { PORT: '0' } }).issuer).toBe('http://localhost:8080');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'tessera-config-')), 'tessera.json');
    writeFileSync(file, JSON.stringify({ issuer: 'http://localhost:8080' }));
    expect(loadConfig({ env: { PORT: '19080', TESSERA_CONFIG: file } }).issuer).toBe('http://localhost:8080');
  });

  it('requires real secrets when the issuer is https', () => {
    expect(() => loadConfig({ env: { ISSUER: 'https://auth.example.org' } })).toThrow(/secrets\.keyEncryptionSecret: is required when the issuer is https/);
    expect(() => loadConfig({ env: { ISSUER: 'https://auth.example.org', TESSERA_KEY_SECRET: 'short', TESSERA_COOKIE_KEYS: 'k'.repeat(40) } })).toThrow(
      /TESSERA_KEY_SECRET \(secrets\.keyEncryptionSecret\): must be at least 32 characters/,
    );
  });

  it('checks declared clients against the scope catalog and their kind', () => {
    const file = { clients: [{ clientId: 'svc', name: 'Service', kind: 'service', scopes: ['read', 'nope'] }] };
    expect(() => loadConfig({ env: {}, overrides: file })).toThrow(/clients\.0\.secretSha256: is required for a service client[\s\S]*clients\.0\.scopes\.1: "nope" is not in the scope catalog/);
  });

  it('lets a declared service client be granted introspection, and no device or web client', () => {
    const digest = 'a'.repeat(64);
    const granted = loadConfig({ env: {}, overrides: { clients: [{ clientId: 'svc', name: 'Service', kind: 'service', secretSha256: digest, scopes: ['read'], mayIntrospect: true }] } });
    expect(fromDeclared(granted.clients[0]!).mayIntrospect).toBe(true);
    const plain = loadConfig({ env: {}, overrides: { clients: [{ clientId: 'svc', name: 'Service', kind: 'service', secretSha256: digest, scopes: ['read'] }] } });
    expect(fromDeclared(plain.clients[0]!).mayIntrospect).toBe(false);
    const web = { clientId: 'web', name: 'Web', kind: 'web', secretSha256: digest, scopes: ['read'], redirectUris: ['https://app.example.org/cb'], mayIntrospect: true };
    expect(() => loadConfig({ env: {}, overrides: { clients: [web] } })).toThrow(/clients\.0\.mayIntrospect: only service clients may be granted introspection/);
  });

  it('lets a declared client state the signing algorithm of introspection answers, no other, and no encryption (RFC 9701)', () => {
    const client = { clientId: 'rs', name: 'RS', kind: 'resource_server', secretSha256: 'a'.repeat(64), scopes: ['read'] };
    expect(() => loadConfig({ env: {}, overrides: { clients: [{ ...client, introspectionSignedResponseAlg: 'RS256' }] } })).not.toThrow();
    expect(() => loadConfig({ env: { TESSERA_SIGNING_ALG: 'ES256' }, overrides: { clients: [{ ...client, introspectionSignedResponseAlg: 'RS256' }] } })).toThrow(
      /clients\.0\.introspectionSignedResponseAlg: Tessera signs introspection answers with ES256 only \(oauth\.signingAlgorithm\), not "RS256"/,
    );
    expect(() => loadConfig({ env: {}, overrides: { clients: [{ ...client, introspectionEncryptedResponseAlg: 'RSA-OAEP-256', introspectionEncryptedResponseEnc: 'A256GCM' }] } })).toThrow(
      /clients\.0\.introspectionEncryptedResponseAlg: Tessera does not encrypt introspection answers[\s\S]*clients\.0\.introspectionEncryptedResponseEnc: Tessera does not encrypt/,
    );
  });

  it("checks a declared client's token-exchange policy against the resources and the catalog, and reads the exchange lifetime", () => {
    const digest = 'a'.repeat(64);
    const policy = { subjectTokenKinds: ['personal_access_token', 'session'], audiences: ['urn:tessera:api'], scopes: ['read'] };
    const config = loadConfig({ env: { TESSERA_TOKEN_EXCHANGE_TTL: '120' }, overrides: { clients: [{ clientId: 'jobs', name: 'Jobs', kind: 'service', secretSha256: digest, scopes: ['read'], tokenExchange: policy }] } });
    expect(fromDeclared(config.clients[0]!).tokenExchange).toEqual(policy);
    expect(config.oauth.tokenExchangeTtlSeconds).toBe(120);
    expect(loadConfig({ env: {} }).oauth.tokenExchangeTtlSeconds).toBe(300);
    const wrong = { clientId: 'jobs', name: 'Jobs', kind: 'service', secretSha256: digest, scopes: ['read'], tokenExchange: { ...policy, audiences: ['https://nowhere.example.org'], scopes: ['nope'] } };
    expect(() => loadConfig({ env: {}, overrides: { clients: [wrong] } })).toThrow(/clients\.0\.tokenExchange\.audiences\.0: "https:\/\/nowhere\.example\.org" is not one of oauth\.resources[\s\S]*clients\.0\.tokenExchange\.scopes\.0: "nope" is not in the scope catalog/);
    const device = { clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read'], tokenExchange: policy };
    expect(() => loadConfig({ env: {}, overrides: { clients: [device] } })).toThrow(/clients\.0\.tokenExchange: a device client cannot authenticate/);
    expect(() => loadConfig({ env: { TESSERA_TOKEN_EXCHANGE_TTL: '7200' } })).toThrow(/TESSERA_TOKEN_EXCHANGE_TTL/);
  });

  it('keeps the introspection cache shorter than the session idle timeout', () => {
    expect(() => loadConfig({ env: { TESSERA_INTROSPECTION_CACHE_TTL: '120', TESSERA_SESSION_IDLE_TIMEOUT: '120' } })).toThrow(
      /TESSERA_INTROSPECTION_CACHE_TTL \(introspection\.cacheTtlSeconds\): must be less than sessions\.idleTimeoutSeconds \(120\)/,
    );
    expect(loadConfig({ env: { TESSERA_INTROSPECTION_CACHE_TTL: '119', TESSERA_SESSION_IDLE_TIMEOUT: '120' } }).introspection.cacheTtlSeconds).toBe(119);
  });

  it('names the variable and the key of an invalid value', () => {
    expect(() => loadConfig({ env: { PORT: 'eighty' } })).toThrow(ConfigError);
    try {
      loadConfig({ env: { PORT: 'eighty', DATABASE_URL: 'mysql://x' } });
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toMatch(/PORT \(http\.port\)/);
      expect(message).toMatch(/DATABASE_URL \(database\.url\): must be a URL starting with postgres:/);
    }
  });

  it('reads oauth.directGrants (on by default) from TESSERA_DIRECT_GRANTS, true or false only', () => {
    expect(loadConfig({ env: {} }).oauth.directGrants).toBe(true);
    expect(loadConfig({ env: { TESSERA_DIRECT_GRANTS: 'false' } }).oauth.directGrants).toBe(false);
    expect(loadConfig({ env: { TESSERA_DIRECT_GRANTS: 'true' } }).oauth.directGrants).toBe(true);
    expect(() => loadConfig({ env: { TESSERA_DIRECT_GRANTS: 'no' } })).toThrow(/TESSERA_DIRECT_GRANTS \(oauth\.directGrants\)/);
  });

  it('reads the refresh-token reuse grace (60 s by default, 0 turns it off, at most 300) from TESSERA_REFRESH_REUSE_GRACE_SECONDS', () => {
    expect(loadConfig({ env: {} }).oauth.refreshTokenReuseGraceSeconds).toBe(60);
    expect(loadConfig({ env: { TESSERA_REFRESH_REUSE_GRACE_SECONDS: '0' } }).oauth.refreshTokenReuseGraceSeconds).toBe(0);
    expect(loadConfig({ env: { TESSERA_REFRESH_REUSE_GRACE_SECONDS: '300' } }).oauth.refreshTokenReuseGraceSeconds).toBe(300);
    expect(() => loadConfig({ env: { TESSERA_REFRESH_REUSE_GRACE_SECONDS: '301' } })).toThrow(/TESSERA_REFRESH_REUSE_GRACE_SECONDS \(oauth\.refreshTokenReuseGraceSeconds\)/);
    expect(() => loadConfig({ env: { TESSERA_REFRESH_REUSE_GRACE_SECONDS: '-1' } })).toThrow(/TESSERA_REFRESH_REUSE_GRACE_SECONDS/);
  });

  it('reads http.workers (1 by default, a number or auto) from TESSERA_WORKERS', () => {
    expect(loadConfig({ env: {} }).http.workers).toBe(1);
    expect(loadConfig({ env: { TESSERA_WORKERS: '4' } }).http.workers).toBe(4);
    expect(loadConfig({ env: { TESSERA_WORKERS: 'auto' } }).http.workers).toBe('auto');
    for (const invalid of ['0', 'many', '2.5', '', '1025']) {
      expect(() => loadConfig({ env: { TESSERA_WORKERS: invalid } })).toThrow(/TESSERA_WORKERS \(http\.workers\): must be a whole number from 1 to 1024, or auto/);
    }
  });

  it('refuses unknown TESSERA_ variables, which are usually typos', () => {
    expect(() => loadConfig({ env: { TESSERA_REDIS_PREFX: 'x' } })).toThrow(/TESSERA_REDIS_PREFX: unknown setting/);
  });

  it('never prints a secret in an error or a redacted copy', () => {
    const config = loadConfig({
      env: { DATABASE_URL: 'postgres://u:hunter2hunter2@db/tessera', REDIS_URL: 'redis://:s3cretpass@r:6379', TESSERA_ADMIN_PASSWORD: 'correct horse', TESSERA_KEY_SECRET: 'x-key-secret-'.repeat(3), TESSERA_COOKIE_KEYS: 'y-cookie-key-'.repeat(3) },
    });
    const printed = JSON.stringify(redactConfig(config));
    expect(printed).not.toMatch(/hunter2|s3cretpass|correct horse|key-secret|cookie-key/);
    expect(printed).toMatch(/postgres:\/\/u:\*\*\*@db\/tessera/);
  });

  describe('mail and password reset', () => {
    it('is off by default, with a 30-minute reset link', () => {
      const config = loadConfig({ env: {} });
      expect(config.mail).toBeNull();
      expect(config.passwordReset).toEqual({ linkTtlSeconds: 1800, requestsPerAddressPerHour: 10, messagesPerAccountPerHour: 3 });
      expect(JSON.stringify(redactConfig(config))).toContain('"mail":null');
    });

    it('reads the SMTP server from the environment, the password also from a file, and never prints it', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tessera-smtp-'));
      try {
        await writeFile(join(dir, 'smtp-password'), 'smtp-pass-from-file\n');
        const config = loadConfig({
          env: { TESSERA_SMTP_HOST: 'mail.example.org', TESSERA_SMTP_PORT: '465', TESSERA_SMTP_SECURE: 'true', TESSERA_SMTP_USER: 'tessera', TESSERA_SMTP_PASSWORD_FILE: join(dir, 'smtp-password'), TESSERA_MAIL_FROM: 'Zenodo <no-reply@zenodo.org>', TESSERA_PASSWORD_RESET_TTL: '900' },
        });
        expect(config.mail).toEqual({ smtp: { host: 'mail.example.org', port: 465, secure: true, auth: { user: 'tessera', pass: 'smtp-pass-from-file' } }, from: 'Zenodo <no-reply@zenodo.org>' });
        expect(config.passwordReset.linkTtlSeconds).toBe(900);
        expect(JSON.stringify(redactConfig(config))).not.toContain('smtp-pass-from-file');
        const byUrl = loadConfig({ env: { TESSERA_SMTP_URL: 'smtps://tessera:url-pass-secret@mail.example.org:465', TESSERA_MAIL_FROM: 'no-reply@example.org' } });
        expect(byUrl.mail?.smtp.url).toBe('smtps://tessera:url-pass-secret@mail.example.org:465');
        expect(JSON.stringify(redactConfig(byUrl))).not.toContain('url-pass-secret');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('refuses mail without a sender or a server, and a link that lives under a minute', () => {
      expect(() => loadConfig({ env: { TESSERA_SMTP_HOST: 'mail.example.org' } })).toThrow(/mail\.from/);
      expect(() => loadConfig({ env: { TESSERA_MAIL_FROM: 'no-reply@example.org' } })).toThrow(/mail\.smtp/);
      expect(() => loadConfig({ env: { TESSERA_PASSWORD_RESET_TTL: '30' } })).toThrow(/TESSERA_PASSWORD_RESET_TTL/);
    });
  });

  describe('Redis Sentinel', () => {
    const sentinels = { REDIS_SENTINELS: '10.0.0.1:26379, sentinel-b:26380,[::1]:26381', REDIS_SENTINEL_MASTER: 'tessera' };

    it('reads the sentinels and the master name', () => {
      const config = loadConfig({ env: sentinels });
      expect(config.redis).toMatchObject({ url: null, sentinels: ['10.0.0.1:26379', 'sentinel-b:26380', '[::1]:26381'], sentinelMaster: 'tessera', sentinelPassword: null, password: null });
    });

    it('refuses REDIS_URL beside the sentinels, naming both', () => {
      expect(() => loadConfig({ env: { ...sentinels, REDIS_URL: 'redis://r:6379' } })).toThrow(/REDIS_URL \(redis\.url\): REDIS_URL and REDIS_SENTINELS\/REDIS_SENTINEL_MASTER are exclusive/);
    });

    it('refuses one of the two settings without the other', () => {
      expect(() => loadConfig({ env: { REDIS_SENTINELS: sentinels.REDIS_SENTINELS } })).toThrow(/REDIS_SENTINELS needs REDIS_SENTINEL_MASTER/);
      expect(() => loadConfig({ env: { REDIS_SENTINEL_MASTER: 'tessera' } })).toThrow(/REDIS_SENTINEL_MASTER needs REDIS_SENTINELS/);
    });

    it('refuses a sentinel that is not host:port, and passwords without sentinels', () => {
      expect(() => loadConfig({ env: { ...sentinels, REDIS_SENTINELS: 'sentinel-a' } })).toThrow(/REDIS_SENTINELS \(redis\.sentinels\.0\): each must be host:port/);
      expect(() => loadConfig({ env: { ...sentinels, REDIS_SENTINELS: 'sentinel-a:26379,sentinel-b:70000' } })).toThrow(/REDIS_SENTINELS \(redis\.sentinels\.1\): each must be host:port \(a port from 1 to 65535\)/);
      expect(() => loadConfig({ env: { REDIS_URL: 'redis://r:6379', REDIS_PASSWORD: 'pw' } })).toThrow(/only used with REDIS_SENTINELS/);
    });

    it('never prints the sentinel or data password', () => {
      const config = loadConfig({ env: { ...sentinels, REDIS_SENTINEL_PASSWORD: 'sentinel-s3cret', REDIS_PASSWORD: 'data-s3cret' } });
      expect(config.redis).toMatchObject({ sentinelPassword: 'sentinel-s3cret', password: 'data-s3cret' });
      expect(JSON.stringify(redactConfig(config))).not.toMatch(/s3cret/);
    });
  });

  describe('Redis Cluster', () => {
    const cluster = { REDIS_CLUSTER_NODES: '10.0.0.1:6379, redis-b:6380,[::1]:6381' };

    it('reads the seed nodes, and counts a cluster as Redis', () => {
      const config = loadConfig({ env: cluster });
      expect(config.redis).toMatchObject({ url: null, sentinels: [], clusterNodes: ['10.0.0.1:6379', 'redis-b:6380', '[::1]:6381'], password: null, username: null });
      expect(usesRedis(config)).toBe(true);
      expect(usesRedis(loadConfig({ env: {} }))).toBe(false);
    });

    it('refuses REDIS_URL or Sentinel beside the cluster, naming both', () => {
      expect(() => loadConfig({ env: { ...cluster, REDIS_URL: 'redis://r:6379' } })).toThrow(/REDIS_CLUSTER_NODES \(redis\.clusterNodes\): REDIS_CLUSTER_NODES and REDIS_URL are exclusive/);
      expect(() => loadConfig({ env: { ...cluster, REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_MASTER: 'm' } })).toThrow(
        /REDIS_CLUSTER_NODES \(redis\.clusterNodes\): REDIS_CLUSTER_NODES and REDIS_SENTINELS\/REDIS_SENTINEL_MASTER are exclusive/,
      );
    });

    it('refuses a node that is not host:port, and a sentinel password on a cluster', () => {
      expect(() => loadConfig({ env: { REDIS_CLUSTER_NODES: 'r1:6379,r2' } })).toThrow(/REDIS_CLUSTER_NODES \(redis\.clusterNodes\.1\): each must be host:port/);
      expect(() => loadConfig({ env: { ...cluster, REDIS_SENTINEL_PASSWORD: 'pw' } })).toThrow(/REDIS_SENTINEL_PASSWORD \(redis\.sentinelPassword\): only used with REDIS_SENTINELS/);
    });

    it('takes an ACL user and a password, only beside Sentinel or a cluster, and never prints the password', () => {
      const config = loadConfig({ env: { ...cluster, REDIS_USERNAME: 'tessera', REDIS_PASSWORD: 'cluster-s3cret' } });
      expect(config.redis).toMatchObject({ username: 'tessera', password: 'cluster-s3cret' });
      expect(JSON.stringify(redactConfig(config))).not.toMatch(/s3cret/);
      expect(() => loadConfig({ env: { REDIS_URL: 'redis://r:6379', REDIS_USERNAME: 'tessera' } })).toThrow(/REDIS_USERNAME \(redis\.username\): only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES/);
    });
  });

  describe('Redis TLS', () => {
    let dir: string;
    let ca: TestCa;
    let client: CertificateFiles;
    /** Files that are not what their setting wants, each holding a marker that must never be printed. */
    const bad = { notPem: '', otherKey: '', encryptedKey: '' };
    const MARKER = 'file-content-marker-s3cret';
    const sentinels = { REDIS_SENTINELS: '10.0.0.1:26379', REDIS_SENTINEL_MASTER: 'tessera' };

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'tessera-config-tls-'));
      ca = await createTestCa(dir);
      client = await ca.issue('client');
      bad.notPem = join(dir, 'not-pem.txt');
      await writeFile(bad.notPem, `${MARKER}\n`);
      bad.otherKey = join(dir, 'other-key.pem');
      await writeFile(bad.otherKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
      bad.encryptedKey = join(dir, 'encrypted-key.pem');
      const encrypted = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pass' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
      await writeFile(bad.encryptedKey, encrypted.privateKey);
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    /** The messages of the ConfigError that loading `env` throws. */
    function problems(env: Record<string, string>): string[] {
      try {
        loadConfig({ env });
      } catch (error) {
        if (error instanceof ConfigError) return error.problems;
        throw error;
      }
      throw new Error('no ConfigError');
    }

    it('is off by default, on with REDIS_TLS or a rediss:// URL, and for the sentinels with REDIS_SENTINEL_TLS', async () => {
      expect(readRedisTls(loadConfig({ env: { REDIS_URL: 'redis://r:6379' } }).redis)).toEqual({});
      expect(readRedisTls(loadConfig({ env: { REDIS_URL: 'rediss://r:6379' } }).redis)).toEqual({ tls: {} });
      const config = loadConfig({ env: { REDIS_URL: 'redis://r:6379', REDIS_TLS: 'true', REDIS_TLS_CA_FILE: ca.certFile, REDIS_TLS_CERT_FILE: client.certFile, REDIS_TLS_KEY_FILE: client.keyFile, REDIS_TLS_SERVERNAME: 'redis.internal' } });
      expect(config.redis.tls).toEqual({ enabled: true, caFile: ca.certFile, certFile: client.certFile, keyFile: client.keyFile, serverName: 'redis.internal' });
      const material = { ca: await readFile(ca.certFile), cert: await readFile(client.certFile), key: await readFile(client.keyFile), serverName: 'redis.internal' };
      expect(readRedisTls(config.redis)).toEqual({ tls: material });
      // The configuration holds the paths only: printing it prints no key.
      expect(JSON.stringify(redactConfig(config))).not.toContain('PRIVATE KEY');
      const viaSentinels = loadConfig({ env: { ...sentinels, REDIS_TLS: 'true', REDIS_SENTINEL_TLS: 'true', REDIS_TLS_CA_FILE: ca.certFile } });
      expect(readRedisTls(viaSentinels.redis)).toEqual({ tls: { ca: material.ca }, sentinelTls: { ca: material.ca } });
      const sentinelsOnly = loadConfig({ env: { ...sentinels, REDIS_SENTINEL_TLS: 'true', REDIS_TLS_CA_FILE: ca.certFile } });
      expect(readRedisTls(sentinelsOnly.redis)).toEqual({ sentinelTls: { ca: material.ca } });
    });

    it('refuses a file that cannot be read, naming its variable', () => {
      expect(problems({ REDIS_URL: 'rediss://r:6379', REDIS_TLS_CA_FILE: join(dir, 'missing.pem') })).toEqual([`REDIS_TLS_CA_FILE (redis.tls.caFile): cannot read ${join(dir, 'missing.pem')} (ENOENT)`]);
      expect(problems({ REDIS_URL: 'rediss://r:6379', REDIS_TLS_CERT_FILE: dir, REDIS_TLS_KEY_FILE: client.keyFile })).toEqual([`REDIS_TLS_CERT_FILE (redis.tls.certFile): cannot read ${dir} (EISDIR)`]);
    });

    it('refuses a file that is not what its variable wants, never printing its content', () => {
      const refusals = [
        problems({ REDIS_URL: 'rediss://r:6379', REDIS_TLS_CA_FILE: bad.notPem }),
        problems({ REDIS_URL: 'rediss://r:6379', REDIS_TLS_CERT_FILE: bad.notPem, REDIS_TLS_KEY_FILE: bad.notPem }),
        problems({ REDIS_URL: 'rediss://r:6379', REDIS_TLS_CERT_FILE: client.certFile, REDIS_TLS_KEY_FILE: bad.otherKey }),
        problems({ REDIS_URL: 'rediss://r:6379', REDIS_TLS_CERT_FILE: client.certFile, REDIS_TLS_KEY_FILE: bad.encryptedKey }),
      ];
      expect(refusals).toEqual([
        [`REDIS_TLS_CA_FILE (redis.tls.caFile): ${bad.notPem} holds no PEM certificate`],
        [`REDIS_TLS_CERT_FILE (redis.tls.certFile): ${bad.notPem} holds no PEM certificate`, `REDIS_TLS_KEY_FILE (redis.tls.keyFile): ${bad.notPem} holds no PEM private key`],
        [`REDIS_TLS_KEY_FILE (redis.tls.keyFile): ${bad.otherKey} is not the key of the certificate in ${client.certFile}`],
        [`REDIS_TLS_KEY_FILE (redis.tls.keyFile): ${bad.encryptedKey} is encrypted (Tessera needs it unencrypted)`],
      ]);
      expect(JSON.stringify(refusals)).not.toContain(MARKER);
    });

    it('refuses a key without its certificate and the reverse', () => {
      expect(problems({ REDIS_URL: 'rediss://r:6379', REDIS_TLS_KEY_FILE: client.keyFile })).toEqual(['REDIS_TLS_KEY_FILE (redis.tls.keyFile): needs REDIS_TLS_CERT_FILE, the client certificate of this key']);
      expect(problems({ REDIS_URL: 'rediss://r:6379', REDIS_TLS_CERT_FILE: client.certFile })).toEqual(['REDIS_TLS_CERT_FILE (redis.tls.certFile): needs REDIS_TLS_KEY_FILE, the private key of this certificate']);
    });

    it('refuses TLS settings while TLS is off, REDIS_SENTINEL_TLS without sentinels, and a REDIS_TLS that is not true or false', () => {
      expect(problems({ REDIS_URL: 'redis://r:6379', REDIS_TLS_CA_FILE: ca.certFile, REDIS_TLS_SERVERNAME: 'redis.internal' })).toEqual([
        'REDIS_TLS_CA_FILE (redis.tls.caFile): TLS is off: set REDIS_TLS=true (or use a rediss:// URL)',
        'REDIS_TLS_SERVERNAME (redis.tls.serverName): TLS is off: set REDIS_TLS=true (or use a rediss:// URL)',
      ]);
      expect(problems({ REDIS_URL: 'rediss://r:6379', REDIS_SENTINEL_TLS: 'true' })).toEqual([
        'REDIS_SENTINEL_TLS (redis.sentinelTls): only used with REDIS_SENTINELS (REDIS_TLS or a rediss:// URL turns TLS on for Redis itself)',
      ]);
      expect(problems({ REDIS_URL: 'redis://r:6379', REDIS_TLS: 'yes' })).toEqual([expect.stringMatching(/^REDIS_TLS \(redis\.tls\.enabled\): /)]);
    });
  });

  describe('identityProviders', () => {
    const uni = { id: 'uni', name: 'University', issuer: 'https://idp.uni.example.org', clientId: 'tessera', clientSecret: 'the-upstream-client-secret' };

    it('resolves each provider, and keeps its secret out of what is printed', () => {
      const config = loadConfig({ env: {}, overrides: { identityProviders: [uni, { id: 'orcid', name: 'ORCID', preset: 'orcid', clientId: 'APP-1', privateKey: '-----BEGIN PRIVATE KEY-----x' }] } });
      expect(config.identityProviders.map((p) => [p.id, p.issuer, p.protocol])).toEqual([
        ['uni', 'https://idp.uni.example.org', 'oidc'],
        ['orcid', 'https://orcid.org', 'oidc'],
      ]);
      const printed = JSON.stringify(redactConfig(config));
      expect(printed).not.toContain('the-upstream-client-secret');
      expect(printed).not.toContain('BEGIN PRIVATE KEY');
      expect(loadConfig({ env: {} }).identityProviders).toEqual([]);
    });

    it('refuses scopes a provider would grant that are not in the catalog, naming the entry', () => {
      expect(() => loadConfig({ env: {}, overrides: { identityProviders: [{ ...uni, scopeRules: [{ claim: 'groups', value: 'x', scopes: ['admin'] }] }] } })).toThrow(/identityProviders\.0: grants "admin", which is not in the scope catalog/);
      expect(() => loadConfig({ env: {}, overrides: { identityProviders: [{ ...uni, defaultScopes: ['nope'] }] } })).toThrow(/identityProviders\.0: grants "nope"/);
      expect(() => loadConfig({ env: {}, overrides: { identityProviders: [{ ...uni, issuer: undefined }] } })).toThrow(/identityProviders\.0\.issuer: is required for the oidc preset/);
    });
  });
});
