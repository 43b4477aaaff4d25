import { readFileSync } from 'node:fs';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../provisioning/src/http/api-error.ts';
import { parseGcpImport } from '../../provisioning/src/import/parse-gcp-import.ts';
import type { ImportDevice } from '../../provisioning/src/import/import-set.ts';
import { toEmqxRecords, type GcloudDevice } from '../fixtures/gcp/emqx-format.ts';
import { selfSignedCertificate } from '../helpers/x509.ts';

const FIXTURE: GcloudDevice[] = JSON.parse(readFileSync(new URL('../fixtures/gcp/export-1000.json', import.meta.url), 'utf8'));
const NAME = 'projects/acme-iot/locations/us-central1/registries/plant-7/devices';

const ecPem = (): string => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
let rsa: { publicKey: KeyObject; privateKey: KeyObject };
beforeAll(() => {
  rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
});

let n = 0;
/** A gcloud Device resource with a fresh P-256 key; `o` overrides its fields. */
function device(o: Partial<GcloudDevice> & Record<string, unknown> = {}): GcloudDevice {
  n++;
  const numId = String(1_000_000_000_000_000 + n);
  return {
    id: `dev-${n}`,
    name: `${NAME}/${numId}`,
    numId,
    credentials: [{ publicKey: { format: 'ES256_PEM', key: ecPem() }, expirationTime: '1970-01-01T00:00:00Z' }],
    config: { version: '2', binaryData: Buffer.from('{"a":1}').toString('base64') },
    ...o,
  };
}

function refusalsOf(input: unknown, opts = {}) {
  const parsed = parseGcpImport(input, opts);
  return parsed.refusals.map((r) => [r.id, r.code]);
}

/** The fields both formats carry, for comparing a gcloud import with an EMQX one. */
const shared = (d: ImportDevice) => ({
  id: d.id,
  numId: d.numId,
  binding: d.binding,
  blocked: d.blocked,
  credentials: d.credentials.map((c) => [c.key.fingerprint, c.key.keyType, c.expiresAt]),
  config: d.config === null ? null : d.config.data.toString('hex'),
});

describe('the 1,000-device gcloud export (test/fixtures/gcp/export-1000.json)', () => {
  const parsed = parseGcpImport(FIXTURE);

  it('reads every device, refusing none', () => {
    expect(parsed.format).toBe('gcloud');
    expect(parsed.refusals).toEqual([]);
    expect(parsed.devices).toHaveLength(1000);
  });

  it('keeps RSA and EC keys, SPKI and X.509, each with its fingerprint and the export’s expiry', () => {
    const creds = parsed.devices.flatMap((d) => d.credentials);
    const formats = FIXTURE.flatMap((d) => d.credentials!.map((c) => c.publicKey.format));
    expect(creds).toHaveLength(formats.length);
    expect(creds.filter((c) => c.key.keyType === 'rsa').length).toBe(formats.filter((f) => f.startsWith('RSA')).length);
    expect(creds.filter((c) => c.key.format === 'x509').length).toBe(formats.filter((f) => f.endsWith('X509_PEM')).length);
    expect(new Set(creds.map((c) => c.key.fingerprint)).size).toBe(creds.length);
    // 1970 = no expiry; past expirations kept (expired keys); a certificate's notAfter is not applied
    const exp = FIXTURE.flatMap((d) => d.credentials!.map((c) => c.expirationTime));
    creds.forEach((c, i) => {
      const t = exp[i]!;
      expect(c.expiresAt).toBe(t.startsWith('1970') ? null : Math.floor(Date.parse(t) / 1000) * 1000);
    });
    expect(creds.some((c) => c.expiresAt !== null && c.expiresAt < Date.now())).toBe(true);
    expect(creds.some((c) => c.key.format === 'x509' && c.key.expiresAt! < Date.now() && c.expiresAt === null)).toBe(true);
  });

  it('int64 values arrive as strings and stay exact, numIds above 2^53 included', () => {
    const big = parsed.devices.filter((d) => BigInt(d.numId) > 2n ** 53n);
    expect(big.length).toBeGreaterThan(0);
    for (const d of parsed.devices) expect(d.numId).toBe(FIXTURE.find((f) => f.id === d.id)!.numId);
  });

  it('keeps blocked devices, metadata, and the config version with its bytes (either base64 alphabet)', () => {
    expect(parsed.devices.filter((d) => d.blocked)).toHaveLength(FIXTURE.filter((d) => d.blocked).length);
    for (const d of parsed.devices) {
      const f = FIXTURE.find((x) => x.id === d.id)!;
      expect(d.metadata).toEqual(f.metadata ?? {});
      expect(d.config?.version).toBe(Number(f.config!.version));
      const b64 = f.config!.binaryData ?? '';
      expect(d.config?.data.equals(Buffer.from(b64, /[-_]/.test(b64) ? 'base64url' : 'base64'))).toBe(true);
      expect(d.binding.project).toBe('acme-iot-prod');
    }
    expect(new Set(parsed.devices.map((d) => `${d.binding.location}/${d.binding.registry}`))).toEqual(new Set(['us-central1/fleet-a', 'europe-west1/fleet-b']));
  });

  it('the same devices as EMQX records (each twice, by id and by numId) give the same set, less what EMQX does not carry', () => {
    const records = toEmqxRecords(FIXTURE);
    expect(records).toHaveLength(2000);
    const emqx = parseGcpImport(records);
    expect(emqx.format).toBe('emqx');
    expect(emqx.refusals).toEqual([]);
    expect(emqx.devices.map(shared)).toEqual(parsed.devices.map(shared));
    expect(emqx.devices.every((d) => d.metadata === null && d.config?.version === null)).toBe(true);
  });
});

describe('the formats’ details (docs/migrating-from-cloud-iot-core.md §Import)', () => {
  it('one device as `describe` prints it, not in an array', () => {
    expect(parseGcpImport(device()).devices).toHaveLength(1);
  });

  it('RFC 3339 with nanoseconds, and 1970-01-01T00:00:00Z for none', () => {
    const d = parseGcpImport([
      device({ credentials: [{ publicKey: { format: 'ES256_PEM', key: ecPem() }, expirationTime: '2030-02-03T04:05:06.123456789Z' }] }),
      device({ credentials: [{ publicKey: { format: 'ES256_PEM', key: ecPem() } }] }),
    ]).devices;
    expect(d[0]!.credentials[0]!.expiresAt).toBe(Date.UTC(2030, 1, 3, 4, 5, 6)); // kept to the second
    expect(d[1]!.credentials[0]!.expiresAt).toBeNull();
  });

  it('binaryData in either alphabet, padded or not; a config without data is empty', () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xfe, 0x3e, 0x3f]);
    const forms = [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('base64').replace(/=+$/, '')];
    for (const binaryData of forms) expect(parseGcpImport(device({ config: { version: '3', binaryData } })).devices[0]!.config!.data.equals(bytes), binaryData).toBe(true);
    expect(parseGcpImport(device({ config: { version: '1' } })).devices[0]!.config).toEqual({ version: 1, data: Buffer.alloc(0) });
    expect(parseGcpImport(device({ config: undefined })).devices[0]!.config).toBeNull();
  });

  it('blocked is kept, absent means false', () => {
    expect(parseGcpImport([device({ blocked: true }), device()]).devices.map((d) => d.blocked)).toEqual([true, false]);
  });

  it('numId from the resource name when the numId field is absent; a numeric numId only when exact', () => {
    const d = device();
    const { numId: _n, ...withoutNumId } = d;
    expect(parseGcpImport(withoutNumId).devices[0]!.numId).toBe(d.numId);
    expect(parseGcpImport(device({ name: undefined, numId: 12345 as unknown as string }), { project: 'acme-iot', location: 'us-central1', registry: 'plant-7' }).devices[0]!.numId).toBe('12345');
  });

  it('--project/--location/--registry fill in a binding the records lack, and refuse one that differs', () => {
    const bare = device({ name: undefined });
    expect(refusalsOf(bare)).toEqual([[bare.id, 'invalid_binding']]);
    expect(parseGcpImport(bare, { project: 'acme-iot', location: 'us-central1', registry: 'plant-7' }).devices[0]!.binding).toEqual({ project: 'acme-iot', location: 'us-central1', registry: 'plant-7' });
    const named = device();
    expect(refusalsOf(named, { registry: 'plant-8' })).toEqual([[named.id, 'binding_conflict']]);
    expect(refusalsOf(named, { registry: 'plant-7' })).toEqual([]);
  });

  it('RSA keys in both RSA formats; certificates kept even when expired', () => {
    const cert = selfSignedCertificate({ ...rsa, commonName: 'unused', notBefore: Date.UTC(2021, 0, 1), notAfter: Date.UTC(2022, 0, 1), serialHex: '05' });
    const spki = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const d1 = parseGcpImport(device({ credentials: [{ publicKey: { format: 'RSA_X509_PEM', key: cert } }] })).devices[0]!;
    expect(d1.credentials[0]!.key.keyType).toBe('rsa');
    expect(d1.credentials[0]!.expiresAt).toBeNull();
    const d2 = parseGcpImport(device({ credentials: [{ publicKey: { format: 'RSA_PEM', key: spki } }] })).devices[0]!;
    expect(d2.credentials[0]!.key.fingerprint).toBe(d1.credentials[0]!.key.fingerprint);
  });
});

describe('refusals name each device and its reason; the good devices still parse', () => {
  it.each([
    ['an id outside latchkey’s alphabet', () => device({ id: 'thermo+1' }), 'invalid_device_id'],
    ['an RSA key under 2048 bits', () => device({ credentials: [{ publicKey: { format: 'RSA_PEM', key: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string } }] }), 'key_too_small'],
    ['a private key', () => device({ credentials: [{ publicKey: { format: 'RSA_PEM', key: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string } }] }), 'private_key_rejected'],
    ['an EC key under RSA_PEM', () => device({ credentials: [{ publicKey: { format: 'RSA_PEM', key: ecPem() } }] }), 'key_format_mismatch'],
    ['a bare key under ES256_X509_PEM', () => device({ credentials: [{ publicKey: { format: 'ES256_X509_PEM', key: ecPem() } }] }), 'key_format_mismatch'],
    ['an unknown key format', () => device({ credentials: [{ publicKey: { format: 'RS256_JWK', key: ecPem() } }] }), 'key_format_mismatch'],
    ['a P-384 key', () => device({ credentials: [{ publicKey: { format: 'ES256_PEM', key: generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }) as string } }] }), 'unsupported_curve'],
    ['a malformed key', () => device({ credentials: [{ publicKey: { format: 'ES256_PEM', key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' } }] }), 'invalid_public_key'],
    ['no credential', () => device({ credentials: [] }), 'credential_missing'],
    ['four credentials', () => device({ credentials: [1, 2, 3, 4].map(() => ({ publicKey: { format: 'ES256_PEM', key: ecPem() } })) }), 'credential_limit'],
    ['a gateway', () => device({ gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'DEVICE_AUTH_TOKEN_ONLY' } }), 'gateway_not_supported'],
    ['an unreadable expirationTime', () => device({ credentials: [{ publicKey: { format: 'ES256_PEM', key: ecPem() }, expirationTime: '2023-02-30T00:00:00Z' }] }), 'invalid_expiration'],
    ['config version 0', () => device({ config: { version: '0' } }), 'invalid_config'],
    ['config data in mixed alphabets', () => device({ config: { version: '1', binaryData: 'ab+_' } }), 'invalid_config'],
    ['config data with stray bits', () => device({ config: { version: '1', binaryData: 'QR==' } }), 'invalid_config'],
    ['config data over 64 KiB', () => device({ config: { version: '1', binaryData: Buffer.alloc(65_537).toString('base64') } }), 'invalid_config'],
    ['metadata that is not a map of strings', () => device({ metadata: { a: 1 } }), 'invalid_metadata'],
    ['metadata over 4 KiB', () => device({ metadata: { a: 'x'.repeat(4100) } }), 'invalid_metadata'],
    ['a numId disagreeing with the name', () => device({ numId: '42' }), 'invalid_num_id'],
    ['a numId over 2^64 − 1', () => device({ name: undefined, numId: '18446744073709551616' }), 'invalid_num_id'],
    ['an unsafe numeric numId', () => device({ name: undefined, numId: 9_007_199_254_740_993 as unknown as string }), 'invalid_num_id'],
    ['a name that is not a device resource name', () => device({ name: 'projects/acme-iot/devices/1' }), 'invalid_binding'],
    ['blocked as a string', () => device({ blocked: 'true' as unknown as boolean }), 'invalid_record'],
  ])('%s', (_what, make, code) => {
    const bad = make();
    const good = [device(), device()];
    const parsed = parseGcpImport([good[0], bad, good[1]], { project: 'acme-iot', location: 'us-central1', registry: 'plant-7' });
    expect(parsed.refusals.map((r) => [r.id, r.code])).toEqual([[bad.id, code]]);
    expect(parsed.devices.map((d) => d.id)).toEqual(good.map((d) => d.id));
    expect(parsed.refusals[0]!.detail).not.toContain('BEGIN');
  });

  it('a key on two devices refuses both, naming each other', () => {
    const key = ecPem();
    const a = device({ credentials: [{ publicKey: { format: 'ES256_PEM', key } }] });
    const b = device({ credentials: [{ publicKey: { format: 'ES256_PEM', key } }] });
    expect(refusalsOf([a, device(), b])).toEqual([
      [a.id, 'key_in_use'],
      [b.id, 'key_in_use'],
    ]);
  });

  it('one numId on two devices refuses both; the same id twice with different content is a duplicate, an identical repeat is merged', () => {
    const a = device();
    const b = device({ numId: a.numId, name: a.name });
    expect(refusalsOf([a, b])).toEqual([
      [a.id, 'duplicate_device'],
      [b.id, 'duplicate_device'],
    ]);
    const c = device();
    expect(parseGcpImport([c, structuredClone(c)]).devices).toHaveLength(1);
    expect(refusalsOf([c, { ...c, blocked: true }])).toEqual([[c.id, 'duplicate_device']]);
  });

  it('records that are neither format are named by index', () => {
    expect(refusalsOf([device(), 42, { hello: 1 }])).toEqual([
      ['#1', 'invalid_record'],
      ['#2', 'invalid_record'],
    ]);
  });
});

describe('EMQX records', () => {
  it('pairs each device’s id record with its numId record; an unpaired record is refused', () => {
    const [a, b] = [device(), device()];
    const records = toEmqxRecords([a, b]);
    expect(parseGcpImport(records).devices.map((d) => [d.id, d.numId])).toEqual([
      [a.id, a.numId],
      [b.id, b.numId],
    ]);
    expect(refusalsOf(records.slice(0, 3))).toEqual([[b.id, 'invalid_num_id']]);
    expect(refusalsOf([records[0], records[1], records[3]])).toEqual([[b.numId, 'invalid_record']]);
  });

  it('expires_at 0 is no expiry, seconds otherwise; config is version-less base64', () => {
    const a = device({ credentials: [{ publicKey: { format: 'ES256_PEM', key: ecPem() }, expirationTime: '2030-01-01T00:00:00Z' }] });
    const d = parseGcpImport(toEmqxRecords([a])).devices[0]!;
    expect(d.credentials[0]!.expiresAt).toBe(Date.UTC(2030, 0, 1));
    expect(d.config).toEqual({ version: null, data: Buffer.from('{"a":1}') });
    const b = parseGcpImport(toEmqxRecords([device({ credentials: [{ publicKey: { format: 'ES256_PEM', key: ecPem() } }] })])).devices[0]!;
    expect(b.credentials[0]!.expiresAt).toBeNull();
  });

  it('an id given twice with different content is a duplicate', () => {
    const a = device();
    const records = toEmqxRecords([a]);
    expect(refusalsOf([...records, { ...records[0], blocked: true }])).toEqual(
      expect.arrayContaining([[a.id, 'duplicate_device']]),
    );
  });
});

describe('a file that is not an export (problem+json codes)', () => {
  const codeOf = (input: unknown) => {
    try {
      parseGcpImport(input);
      return 'accepted';
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      return (e as ApiError).code;
    }
  };

  it('a string, a number or null is import_malformed; an empty array imports nothing', () => {
    for (const v of ['x', 3, null, true]) expect(codeOf(v)).toBe('import_malformed');
    expect(parseGcpImport([])).toEqual({ format: 'gcloud', devices: [], refusals: [] });
  });

  it('gcloud devices mixed with EMQX records is import_malformed', () => {
    expect(codeOf([device(), ...toEmqxRecords([device()])])).toBe('import_malformed');
  });

  it('more than 10,000 devices is payload_too_large', () => {
    expect(codeOf(Array.from({ length: 20_001 }, () => ({})))).toBe('payload_too_large');
  });
});
