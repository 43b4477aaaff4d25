/**
 * Issue 14, "Done when": an import of a realistic gcloud export round-trips through
 * `POST /v1/import/gcp` into the registry — 1,000 devices, RSA and EC, X.509 and SPKI, some blocked,
 * some with expired keys, configs with binary data; the same devices as EMQX records give the same
 * registry (less what EMQX does not carry); importing again changes nothing; a file with a bad
 * device refuses the whole import and names it (docs/migrating-from-cloud-iot-core.md §Import).
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Registry as MetricsRegistry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../provisioning/src/http/app.ts';
import type { DeviceRecord, Registry } from '../../provisioning/src/registry/index.ts';
import { toEmqxRecords, type GcloudDevice } from '../fixtures/gcp/emqx-format.ts';
import { BACKENDS, registryFixture, type BackendName } from '../registry/registry-fixture.ts';

const EXPORT_TEXT = readFileSync(new URL('../fixtures/gcp/export-1000.json', import.meta.url), 'utf8');
const EXPORT = JSON.parse(EXPORT_TEXT) as GcloudDevice[];
const ADMIN = 'test-admin-token-0123456789';

interface Api {
  registry: Registry;
  post(body: string, query?: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

const open: Api[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
});

/** The HTTP API over a fresh registry on `backend` (PostgreSQL: a schema of its own when another is open). */
async function start(backend: BackendName): Promise<Api> {
  const fx = await registryFixture(backend);
  const registry = fx.registry;
  const app = await buildApp({ config: { adminToken: ADMIN }, registry, clock: Date.now, metrics: new MetricsRegistry() });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const api: Api = {
    registry,
    async post(body, query = '') {
      const res = await fetch(`${url}/v1/import/gcp${query}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body });
      return { status: res.status, body: await res.json() };
    },
    async close() {
      await app.close();
      await fx.cleanup();
    },
  };
  open.push(api);
  return api;
}

/** Every device as the API shows it, in id order (createdAt and kids are the registry's own). */
async function snapshot(registry: Registry): Promise<DeviceRecord[]> {
  const out: DeviceRecord[] = [];
  let after: string | null = null;
  do {
    const page = await registry.devices.list({ limit: 500, after });
    out.push(...page.items);
    after = page.next;
  } while (after !== null);
  return out;
}

/** What both formats carry: the binding, blocked, the keys with their expiry, the config bytes. */
async function carried(registry: Registry, d: DeviceRecord) {
  return {
    id: d.id,
    blocked: d.blocked,
    gcp: d.gcp,
    credentials: d.credentials.map((c) => `${c.fingerprint}/${c.expiresAt}`).sort(),
    config: (await registry.gcp.config(d.id))?.data.toString('base64') ?? null,
  };
}

describe.each(BACKENDS)('the 1,000-device gcloud export, through POST /v1/import/gcp (%s)', (backend) => {
  it('imports every device as the export describes it', async () => {
    const api = await start(backend);
    const dry = await api.post(EXPORT_TEXT, '?dryRun=true');
    expect(dry).toEqual({ status: 200, body: { imported: 1000, unchanged: 0, refused: [], dryRun: true } });
    expect((await snapshot(api.registry))).toEqual([]);

    expect(await api.post(EXPORT_TEXT)).toEqual({ status: 200, body: { imported: 1000, unchanged: 0, refused: [], dryRun: false } });
    const devices = (await snapshot(api.registry));
    expect(devices).toHaveLength(1000);
    const byId = new Map(devices.map((d) => [d.id, d]));
    for (const g of EXPORT) {
      const d = byId.get(g.id) as DeviceRecord;
      const [, project, , location, , registry] = g.name.split('/');
      // binding and numId: exact, also above 2^53
      expect(d.gcp).toEqual({ project, location, registry, numId: g.numId });
      expect(await api.registry.gcp.deviceIdOfNumId(g.numId)).toBe(g.id);
      // blocked devices are imported, blocked
      expect(d.blocked).toBe(g.blocked === true);
      expect(d.metadata).toEqual(g.metadata ?? {});
      // every key, with the export's expiry (none for 1970-01-01T00:00:00Z), expired ones too
      expect(d.credentials.map((c) => c.expiresAt)).toEqual(
        (g.credentials ?? []).map((c) => (c.expirationTime === '1970-01-01T00:00:00Z' ? null : Math.floor(Date.parse(c.expirationTime as string) / 1000) * 1000)),
      );
      // the config's version number and its bytes, whichever base64 alphabet the export used
      const config = await api.registry.gcp.config(g.id);
      expect(config?.version).toBe(Number(g.config?.version));
      const bytes = g.config?.binaryData ?? '';
      expect(config?.data).toEqual(Buffer.from(bytes, /[-_]/.test(bytes) ? 'base64url' : 'base64'));
    }
    // the mix the fixture promises
    const formats = new Set(EXPORT.flatMap((g) => (g.credentials ?? []).map((c) => c.publicKey.format)));
    expect([...formats].sort()).toEqual(['ES256_PEM', 'ES256_X509_PEM', 'RSA_PEM', 'RSA_X509_PEM']);
    expect(devices.filter((d) => d.blocked).length).toBeGreaterThan(0);
    expect(devices.some((d) => d.credentials.some((c) => c.expiresAt !== null && c.expiresAt < Date.now()))).toBe(true);
    expect(EXPORT.some((g) => g.config?.binaryData !== undefined && !/^[\x20-\x7e]*$/.test(Buffer.from(g.config.binaryData, 'base64').toString('latin1')))).toBe(true);
  }, 120_000);

  it('importing it again changes nothing', async () => {
    const api = await start(backend);
    await api.post(EXPORT_TEXT);
    const before = (await snapshot(api.registry));
    const audit = (await api.registry.audit.list({ limit: 10 })).length;
    expect(await api.post(EXPORT_TEXT)).toEqual({ status: 200, body: { imported: 0, unchanged: 1000, refused: [], dryRun: false } });
    expect((await snapshot(api.registry))).toEqual(before);
    // one audit entry per import that stored something
    expect((await api.registry.audit.list({ limit: 10 })).filter((e) => e.action === 'import.gcp')).toHaveLength(1);
    expect((await api.registry.audit.list({ limit: 10 })).length).toBe(audit);
  }, 120_000);

  it('the same devices as EMQX records give the same registry, less what EMQX does not carry (metadata, the config version)', async () => {
    const gcloud = await start(backend);
    const emqx = await start(backend);
    await gcloud.post(EXPORT_TEXT);
    expect(await emqx.post(JSON.stringify(toEmqxRecords(EXPORT)))).toEqual({ status: 200, body: { imported: 1000, unchanged: 0, refused: [], dryRun: false } });
    const a = await Promise.all((await snapshot(gcloud.registry)).map((d) => carried(gcloud.registry, d)));
    const b = await Promise.all((await snapshot(emqx.registry)).map((d) => carried(emqx.registry, d)));
    expect(b).toEqual(a);
    // EMQX records carry no version: stored as version 1
    expect(new Set((await snapshot(emqx.registry)).map((d) => d.config.version))).toEqual(new Set([1]));
  }, 180_000);

  it('a file with a bad device refuses the whole import and names it', async () => {
    const api = await start(backend);
    const bad = structuredClone(EXPORT);
    const victim = bad[417] as GcloudDevice;
    // a key cut short: its DER ends inside the SPKI structure
    (victim.credentials?.[0] as { publicKey: { key: string } }).publicKey.key = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n';
    (bad[604] as GcloudDevice).id = 'has space';
    const r = await api.post(JSON.stringify(bad));
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ type: 'urn:latchkey:problem:import_rejected', code: 'import_rejected', status: 400 });
    expect((r.body.refused as { id: string; code: string }[]).map((x) => [x.id, x.code]).sort()).toEqual([
      ['has space', 'invalid_device_id'],
      [victim.id, 'invalid_public_key'],
    ]);
    expect((await snapshot(api.registry))).toEqual([]);
  }, 120_000);
});

describe.each(BACKENDS)('against what the registry holds (%s)', (backend) => {
  const two = EXPORT.slice(0, 2);

  it('a device registered differently is device_exists; a numId or a key of another device is refused; nothing is stored', async () => {
    const api = await start(backend);
    await api.post(JSON.stringify(two));
    const changed = structuredClone(two);
    (changed[0] as GcloudDevice).blocked = !(two[0] as GcloudDevice).blocked; // differs from what is stored
    const moved = { ...structuredClone(EXPORT[2] as GcloudDevice), numId: (two[1] as GcloudDevice).numId };
    moved.name = moved.name.replace(/\d+$/, moved.numId);
    const thief = { ...structuredClone(EXPORT[3] as GcloudDevice), credentials: (two[1] as GcloudDevice).credentials };
    const fresh = structuredClone(EXPORT[4] as GcloudDevice);
    const r = await api.post(JSON.stringify([changed[0], moved, thief, fresh]));
    expect(r.status).toBe(400);
    expect((r.body.refused as { id: string; code: string }[]).map((x) => [x.id, x.code]).sort()).toEqual([
      [two[0]?.id, 'device_exists'],
      [moved.id, 'num_id_in_use'],
      [thief.id, 'key_in_use'],
    ].sort());
    expect((await snapshot(api.registry)).map((d) => d.id)).toEqual(two.map((d) => d.id).sort());
  });

  it('a body that is no export is import_malformed problem+json', async () => {
    const api = await start(backend);
    for (const body of ['"text"', '42', 'null', '[{"id":"a-1","name":"projects/p/x","credentials":[]},{"deviceid":"x","keys":[]}]']) {
      const r = await api.post(body);
      expect([r.status, r.body.code], body).toEqual([400, 'import_malformed']);
    }
    expect((await api.post('{not json')).body.code).toBe('malformed_json');
  });
});
