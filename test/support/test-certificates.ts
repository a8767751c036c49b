import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

// Certificates for tests, made with Debian's openssl command in a directory of the test's own:
// a self-signed one (nginx's TLS listener), or a CA of its own that issues server and client ones.

const OPENSSL = '/usr/bin/openssl';
/** Quick to make, and enough for a test. */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export interface CertificateFiles {
  /** PEM of the certificate. */
  certFile: string;
  /** PEM of its private key, unencrypted. */
  keyFile: string;
}

export interface TestCa extends CertificateFiles {
  /**
   * A certificate signed by this CA, for `name` (its CN and the files' names), valid for the
   * subjectAltName given (`IP:127.0.0.1`, `DNS:redis.test`), or for no name (a client's).
   */
  issue(name: string, subjectAltName?: string): Promise<CertificateFiles>;
}

async function openssl(args: string[]): Promise<void> {
  if (!existsSync(OPENSSL)) throw new Error(`${OPENSSL} is missing: this test makes certificates with it. Install it with apt-get install -y openssl (.ci/run does).`);
  await promisify(execFile)(OPENSSL, args);
}

/** A self-signed certificate for subjectAltName (e.g. `IP:127.0.0.1`), as `name`.pem and `name`-key.pem in dir. */
export async function createSelfSignedCertificate(dir: string, subjectAltName: string, name = 'self-signed'): Promise<CertificateFiles> {
  const files = { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}-key.pem`) };
  await openssl(['req', '-x509', ...NEW_KEY, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=${subjectAltName}`, '-keyout', files.keyFile, '-out', files.certFile]);
  return files;
}

/** A CA of the test's own in dir (`name`.pem), which signs certificates with issue(). */
export async function createTestCa(dir: string, name = 'test-ca'): Promise<TestCa> {
  const ca = await createSelfSignedCertificate(dir, `DNS:${name}`, name);
  return {
    ...ca,
    async issue(certName, subjectAltName) {
      const files = { certFile: join(dir, `${certName}.pem`), keyFile: join(dir, `${certName}-key.pem`) };
      const request = join(dir, `${certName}.csr`);
      await openssl(['req', ...NEW_KEY, '-subj', `/CN=${certName}`, '-keyout', files.keyFile, '-out', request]);
      const extensions = join(dir, `${certName}.ext`);
      await writeFile(extensions, subjectAltName ? `subjectAltName=${subjectAltName}\n` : 'basicConstraints=CA:FALSE\n');
      await openssl(['x509', '-req', '-in', request, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-extfile', extensions, '-out', files.certFile]);
      return files;
    },
  };
}
