/**
 * X.509 test certificates made at test time with the `openssl` CLI in a temp dir.
 * Private keys live only in that dir and are deleted by `cleanup()`; nothing is committed.
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const OPENSSL = '/usr/bin/openssl';

export type CertKeyType = 'p256' | 'p384' | 'secp256k1' | 'rsa' | 'ed25519' | 'p256-explicit';

export interface TestCertificate {
  /** The certificate PEM. */
  pem: string;
  /** The subject public key. */
  publicKey: KeyObject;
  /** The subject public key as SPKI PEM, exactly as openssl writes it. */
  publicKeyPem: string;
}

export interface CertFactory {
  readonly dir: string;
  /** A self-signed certificate valid for `days` days from now. */
  selfSigned(o: { key: CertKeyType; days?: number }): TestCertificate;
  /** A P-256 device certificate signed by a fresh CA with key type `caKey`. */
  caSigned(o: { caKey: CertKeyType; days?: number }): TestCertificate;
  /** Runs openssl with `args`, `input` on stdin; returns stdout. */
  openssl(args: string[], input?: string | Buffer): Buffer;
  cleanup(): void;
}

const GENPKEY_ARGS: Record<Exclude<CertKeyType, 'p256-explicit'>, string[]> = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:named_curve'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-pkeyopt', 'ec_param_enc:named_curve'],
  secp256k1: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1', '-pkeyopt', 'ec_param_enc:named_curve'],
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  ed25519: ['-algorithm', 'ED25519'],
};

export function createCertFactory(): CertFactory {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-certs-'));
  let n = 0;
  const file = (name: string): string => path.join(dir, `${n}-${name}`);
  const openssl = (args: string[], input?: string | Buffer): Buffer =>
    execFileSync(OPENSSL, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });

  function newKey(type: CertKeyType): string {
    n++;
    const keyPath = file('key.pem');
    if (type === 'p256-explicit') {
      openssl(['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout', '-out', keyPath]);
    } else {
      openssl(['genpkey', ...GENPKEY_ARGS[type], '-out', keyPath]);
    }
    return keyPath;
  }

  function result(certPath: string, keyPath: string): TestCertificate {
    const pem = readFileSync(certPath, 'utf8');
    const publicKeyPem = openssl(['pkey', '-in', keyPath, '-pubout']).toString('utf8');
    return { pem, publicKeyPem, publicKey: createPublicKey(publicKeyPem) };
  }

  return {
    dir,
    openssl,
    selfSigned({ key, days = 30 }) {
      const keyPath = newKey(key);
      const certPath = file('cert.pem');
      openssl(['req', '-x509', '-new', '-key', keyPath, '-subj', '/CN=latchkey-test-device', '-days', String(days), '-out', certPath]);
      return result(certPath, keyPath);
    },
    caSigned({ caKey, days = 30 }) {
      const caKeyPath = newKey(caKey);
      const caCert = file('ca.pem');
      openssl(['req', '-x509', '-new', '-key', caKeyPath, '-subj', '/CN=latchkey-test-ca', '-days', '365', '-out', caCert]);
      const keyPath = newKey('p256');
      const csr = file('device.csr');
      openssl(['req', '-new', '-key', keyPath, '-subj', '/CN=thermostat-001', '-out', csr]);
      const certPath = file('device.pem');
      openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKeyPath, '-CAcreateserial', '-days', String(days), '-out', certPath]);
      return result(certPath, keyPath);
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A self-signed P-256 server certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1), made with the
 * openssl CLI for a TLS listener: the certificate doubles as the CA a client trusts. The private key
 * is read into memory and its temp dir removed at once: nothing stays on disk.
 */
export function localhostServerCertificate(): { certPem: string; keyPem: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-tls-'));
  try {
    const key = path.join(dir, 'server.key');
    const cert = path.join(dir, 'server.pem');
    execFileSync(OPENSSL, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'pipe' });
    return { certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
