/**
 * Cloud IoT Core compatibility (issue 14), two figures, each beside its native baseline in the same run:
 *
 * 1. **Import rate for 10,000 devices.** `POST /v1/import/gcp` of a gcloud export — the 1,000 devices
 *    of test/fixtures/gcp/export-1000.json (RSA and EC, SPKI and X.509, configs) plus 9,000 generated
 *    P-256 devices — into a fresh SQLite registry over real HTTP: the dry run (parse and check only),
 *    the import, and the same file again (all unchanged). Baseline: the same 10,000 public keys
 *    registered natively, `POST /v1/devices:batch` of 10,000 (SPKI PEM), into another fresh registry.
 * 2. **Connect CPU, compatibility mode RS256 beside native ES256.** The broker's `authenticate`
 *    hook (the steps, cache and SQLite registry createBroker wires), called in this process with
 *    valid tokens: an imported RSA-2048 device by its path client id (RS256, Cloud IoT Core dialect)
 *    and a native P-256 device (ES256), in interleaved blocks; CPU time per accepted connect
 *    (process.cpuUsage, user + system) and wall time. Warm cache, as a fleet reconnecting is.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from 'aedes';
import jwt from 'jsonwebtoken';
import { Registry as MetricsRegistry } from 'prom-client';
import { DEFAULT_GCP_TOKEN_RULES, DEFAULT_TOKEN_RULES, parsePublicKey } from '@latchkey/device-sdk/protocol';
import { createAuthenticate } from '../broker/src/auth/authenticate.ts';
import { CredentialCache } from '../broker/src/auth/credential-cache.ts';
import { FailureThrottle } from '../broker/src/auth/failure-throttle.ts';
import { SessionTable } from '../broker/src/auth/session-table.ts';
import { mintConnectToken } from '../device-sdk/src/token/mint-token.ts';
import { buildApp } from '../provisioning/src/http/app.ts';
import { openRegistry, type Registry } from '../provisioning/src/registry/index.ts';
import type { BenchResult } from './types.ts';

const DEVICES = 10_000;
const BLOCKS = 20;
const PER_BLOCK = 250;
const ADMIN = 'bench-admin-token-0123456789';

interface Fixture {
  registry: Registry;
  url: string;
  close(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-gcp-'));
  const registry = await openRegistry(path.join(dir, 'bench.db'), { clock: Date.now });
  const app = await buildApp({ config: { adminToken: ADMIN }, registry, clock: Date.now, metrics: new MetricsRegistry() });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    registry,
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    async close() {
      await app.close();
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function timedPost(url: string, body: string): Promise<{ ms: number; status: number; json: any }> {
  const started = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body });
  const json = await res.json();
  return { ms: performance.now() - started, status: res.status, json };
}

/** The export: the fixture's 1,000 devices plus generated P-256 ones up to DEVICES. */
function buildExport(): { gcloud: string; native: string } {
  const base = JSON.parse(readFileSync(new URL('../test/fixtures/gcp/export-1000.json', import.meta.url), 'utf8')) as { id: string; credentials: { publicKey: { key: string } }[] }[];
  const devices: unknown[] = [...base];
  for (let i = base.length; i < DEVICES; i++) {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const numId = String(3_000_000_000_000_000 + i);
    devices.push({
      id: `gen-${String(i).padStart(5, '0')}`,
      name: `projects/acme-iot-prod/locations/us-central1/registries/fleet-c/devices/${numId}`,
      numId,
      credentials: [{ publicKey: { format: 'ES256_PEM', key }, expirationTime: '1970-01-01T00:00:00Z' }],
      config: { version: '3', binaryData: Buffer.from(`{"setpoint":${18 + (i % 7)}}`).toString('base64') },
      metadata: { site: 'plant-7' },
    });
  }
  // the native baseline registers the same public keys (first key of each device; X.509 as its SPKI)
  const native = (devices as { id: string; credentials: { publicKey: { key: string } }[] }[]).map((d) => {
    const pem = d.credentials[0]!.publicKey.key;
    const parsed = parsePublicKey(pem, { allowRsa: true, expiredCertificate: 'keep' });
    // the native API is ES256-only: an RSA device is registered with a fresh P-256 key of the same work
    const key = parsed.keyType === 'rsa' || pem.includes('CERTIFICATE')
      ? (generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string)
      : pem;
    return { id: d.id, publicKey: key };
  });
  return { gcloud: JSON.stringify(devices), native: JSON.stringify({ devices: native }) };
}

async function importRate(lines: string[], metrics: Record<string, number>): Promise<void> {
  const { gcloud, native } = buildExport();
  lines.push(`import: ${DEVICES} devices, ${(gcloud.length / 2 ** 20).toFixed(1)} MiB gcloud JSON (1,000 from the fixture, RSA and EC, X.509 and SPKI, configs; 9,000 P-256)`);
  const g = await fixture();
  const n = await fixture();
  try {
    const dry = await timedPost(`${g.url}/v1/import/gcp?dryRun=true`, gcloud);
    const imp = await timedPost(`${g.url}/v1/import/gcp`, gcloud);
    const again = await timedPost(`${g.url}/v1/import/gcp`, gcloud);
    const batch = await timedPost(`${n.url}/v1/devices:batch`, native);
    if (dry.json.imported !== DEVICES || imp.json.imported !== DEVICES || again.json.unchanged !== DEVICES || batch.status !== 201) {
      throw new Error(`unexpected answers: ${JSON.stringify([dry.json.imported, imp.json.imported, again.json.unchanged, batch.status])}`);
    }
    const rate = (ms: number) => Math.round(DEVICES / (ms / 1000));
    lines.push(`  dry run            ${dry.ms.toFixed(0).padStart(6)} ms  ${rate(dry.ms)} devices/s`);
    lines.push(`  import             ${imp.ms.toFixed(0).padStart(6)} ms  ${rate(imp.ms)} devices/s`);
    lines.push(`  same file again    ${again.ms.toFixed(0).padStart(6)} ms  ${rate(again.ms)} devices/s (all unchanged)`);
    lines.push(`  native batch       ${batch.ms.toFixed(0).padStart(6)} ms  ${rate(batch.ms)} devices/s (baseline: POST /v1/devices:batch, same count)`);
    lines.push(`  import / native batch time: ${(imp.ms / batch.ms).toFixed(2)}×`);
    Object.assign(metrics, { importMs: imp.ms, importDryRunMs: dry.ms, importAgainMs: again.ms, nativeBatchMs: batch.ms, importPerS: rate(imp.ms), importVsBatch: imp.ms / batch.ms });
  } finally {
    await g.close();
    await n.close();
  }
}

async function connectCpu(lines: string[], metrics: Record<string, number>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-gcp-connect-'));
  const registry = await openRegistry(path.join(dir, 'bench.db'), { clock: Date.now });
  try {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { parseGcpImport } = await import('../provisioning/src/import/parse-gcp-import.ts');
    const imported = await registry.gcp.import(
      parseGcpImport([{ id: 'gcp-rsa', name: 'projects/acme-iot/locations/us-central1/registries/fleet-r1/devices/123', credentials: [{ publicKey: { format: 'RSA_PEM', key: rsa.publicKey.export({ type: 'spki', format: 'pem' }) } }] }]),
      { dryRun: false, actor: 'bench' },
    );
    if (imported.imported !== 1) throw new Error(`the RSA device was not imported: ${JSON.stringify(imported.refused)}`);
    await registry.devices.create({ id: 'native-ec', key: parsePublicKey(ec.publicKey.export({ type: 'spki', format: 'pem' })) }, 'bench');
    const authenticate = createAuthenticate({
      rules: DEFAULT_TOKEN_RULES,
      gcp: { projects: ['acme-iot'], ...DEFAULT_GCP_TOKEN_RULES, deviceIdOfNumId: (n) => registry.deviceIdOfNumId(n) },
      clock: Date.now,
      feedDownForMs: () => 0,
      verifiedTokens: null, // every connect pays the full check: the bench compares the two dialects' verify costs
      onTokenCacheHit: () => {},
      credentials: new CredentialCache(registry, 2048, () => {}),
      throttle: new FailureThrottle({ limit: 0, windowMs: 60_000, capacity: 10 }),
      jtis: null,
      sessions: new SessionTable(() => {}),
      unavailable: () => false,
      supersede: () => {},
      emptyClientIds: new WeakSet(),
      remoteAddressOf: () => '127.0.0.1',
      timeoutMs: 5_000,
      observeVerify: () => {},
      onAccepted: () => {},
      onRefused: (f) => {
        throw new Error(`refused: ${f.reason}`);
      },
    });
    const now = Math.floor(Date.now() / 1000);
    // valid tokens, as firmware sends them (each connect a fresh token: no cache can help)
    const tokens = {
      compat: Array.from({ length: PER_BLOCK }, (_, i) => Buffer.from(jwt.sign({ iat: now - i, exp: now + 1200, aud: 'acme-iot' }, rsa.privateKey, { algorithm: 'RS256' }))),
      native: await Promise.all(Array.from({ length: PER_BLOCK }, async () => Buffer.from((await mintConnectToken({ subject: 'native-ec', privateKey: ec.privateKey, ttlSeconds: 600 })).token))),
    };
    const clientIds = { compat: 'projects/acme-iot/locations/us-central1/registries/fleet-r1/devices/gcp-rsa', native: 'native-ec' };
    const block = async (kind: 'compat' | 'native'): Promise<{ cpuUs: number; wallMs: number }> => {
      const cpu = process.cpuUsage();
      const started = performance.now();
      for (const password of tokens[kind]) {
        const client = { id: clientIds[kind], closed: false, clean: true, _will: null, conn: {} } as unknown as Client;
        await new Promise<void>((resolve, reject) => authenticate(client, 'unused', password, (err) => (err ? reject(err) : resolve())));
      }
      const used = process.cpuUsage(cpu);
      return { cpuUs: (used.user + used.system) / PER_BLOCK, wallMs: (performance.now() - started) / PER_BLOCK };
    };
    await block('compat');
    await block('native'); // warm-up: caches filled, JIT settled
    const out = { compat: [] as number[], native: [] as number[], compatWall: [] as number[], nativeWall: [] as number[] };
    for (let b = 0; b < BLOCKS; b++) {
      for (const kind of b % 2 === 0 ? (['compat', 'native'] as const) : (['native', 'compat'] as const)) {
        const r = await block(kind);
        out[kind].push(r.cpuUs);
        out[`${kind}Wall`].push(r.wallMs);
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
    const c = med(out.compat);
    const n = med(out.native);
    lines.push(`connect CPU: authenticate hook, ${BLOCKS} interleaved blocks of ${PER_BLOCK} accepted connects each, median of blocks`);
    lines.push(`  compat RS256 (RSA 2048, path client id)  ${c.toFixed(1)} µs CPU per connect, ${(med(out.compatWall) * 1000).toFixed(1)} µs wall`);
    lines.push(`  native ES256 (P-256)                     ${n.toFixed(1)} µs CPU per connect, ${(med(out.nativeWall) * 1000).toFixed(1)} µs wall`);
    lines.push(`  compat / native CPU: ${(c / n).toFixed(2)}×`);
    Object.assign(metrics, { compatConnectCpuUs: c, nativeConnectCpuUs: n, compatVsNativeCpu: c / n });
  } finally {
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchGcp(): Promise<BenchResult> {
  const lines: string[] = [];
  const metrics: Record<string, number> = {};
  await importRate(lines, metrics);
  await connectCpu(lines, metrics);
  return { name: 'gcp', lines, metrics };
}
