/**
 * Self-signed X.509 v3 certificates built in-process (RFC 5280 §4.1) and signed with node:crypto, so a
 * test or a fixture script can choose any validity period — an already expired certificate too, which
 * `openssl req -x509 -days` cannot make. Only public material leaves this module.
 */
import { sign, type KeyObject } from 'node:crypto';

const tlv = (tag: number, content: Buffer): Buffer => {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
};
const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const oid = (hex: string): Buffer => tlv(0x06, Buffer.from(hex, 'hex'));

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 §4.1.2.5). */
function time(ms: number): Buffer {
  const iso = new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  const year = Number(iso.slice(0, 4));
  return year < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

/** A Name with one commonName (RFC 5280 §4.1.2.4). */
const name = (cn: string): Buffer => seq(tlv(0x31, seq(oid('550403'), tlv(0x0c, Buffer.from(cn, 'utf8')))));

const SHA256_WITH_RSA = seq(oid('2a864886f70d01010b'), Buffer.from([0x05, 0x00]));
const ECDSA_WITH_SHA256 = seq(oid('2a8648ce3d040302'));

export interface CertificateOptions {
  publicKey: KeyObject;
  /** the key that signs it: the subject's own private key (self-signed) */
  privateKey: KeyObject;
  commonName: string;
  /** epoch ms */
  notBefore: number;
  /** epoch ms */
  notAfter: number;
  /** a positive serial number, hex (at most 20 octets) */
  serialHex: string;
}

/**
 * A self-signed certificate PEM (RSA: sha256WithRSAEncryption; EC: ecdsa-with-SHA256).
 *
 * @example
 * ```ts
 * const pem = selfSignedCertificate({ publicKey, privateKey, commonName: 'unused', notBefore: Date.now() - 864e5, notAfter: Date.now() - 1000, serialHex: '01' });
 * ```
 */
export function selfSignedCertificate(o: CertificateOptions): string {
  const rsa = o.privateKey.asymmetricKeyType === 'rsa';
  const algorithm = rsa ? SHA256_WITH_RSA : ECDSA_WITH_SHA256;
  // X.690 §8.3.2: a minimal INTEGER (no leading zero octets), positive (a 0x00 before a set top bit)
  const digits = o.serialHex.replace(/^0+/, '') || '1';
  const serial = Buffer.from(digits.length % 2 === 0 ? digits : `0${digits}`, 'hex');
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // [0] EXPLICIT version v3
    tlv(0x02, serial[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), serial]) : serial),
    algorithm,
    name(o.commonName),
    seq(time(o.notBefore), time(o.notAfter)),
    name(o.commonName),
    o.publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, o.privateKey); // ECDSA: DER, as X.509 wants
  const der = seq(tbs, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}
