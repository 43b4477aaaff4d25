/**
 * Benchmark: batch registration of 10,000 devices through the registry's batch API (key parsing
 * included) against inserting the same rows with a bare better-sqlite3 prepared statement in one
 * transaction. Both run in the same process, in alternated rounds, each on a fresh SQLite file
 * with the same pragmas; keys are generated before the timed region. issue 3 target: ratio ≥ 0.25.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';
import { openRegistry, type NewDevice } from '../provisioning/src/registry/index.ts';

export interface BenchResult {
  name: string;
  lines: string[];
  metrics: Record<string, number>;
}

const DEVICES = 10_000;
const ROUNDS = 3;
const TARGET_RATIO = 0.25;

interface Input {
  id: string;
  pem: string;
}

function makeInputs(): Input[] {
  return Array.from({ length: DEVICES }, (_, i) => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { id: `bench-${String(i).padStart(5, '0')}`, pem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
  });
}

/** The registry path: parse every key (protocol core), then one createMany transaction. */
async function viaRegistry(file: string, inputs: readonly Input[]): Promise<number> {
  const registry = await openRegistry(file, { clock: Date.now });
  try {
    const start = performance.now();
    const batch: NewDevice[] = inputs.map((d) => ({ id: d.id, key: parsePublicKey(d.pem), metadata: {} }));
    await registry.devices.createMany(batch, 'bench');
    return performance.now() - start;
  } finally {
    await registry.close();
  }
}

/**
 * The bare path: the same rows (device + credential) with two prepared statements in one
 * transaction. Key material is pre-decoded outside the timed region so only the inserts count.
 */
async function viaBareStatement(file: string, inputs: readonly Input[], rows: ReadonlyArray<{ fingerprint: string; spkiDer: Buffer }>): Promise<number> {
  // Same schema and pragmas as the registry: let it create the file, then talk to it directly.
  await (await openRegistry(file, { clock: Date.now })).close();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('synchronous = NORMAL');
  try {
    const start = performance.now();
    const device = db.prepare('INSERT INTO devices (id, blocked, metadata, created_at) VALUES (?, 0, ?, ?)');
    const credential = db.prepare(
      `INSERT INTO credentials (kid, principal, device_id, service_name, fingerprint, spki_der, created_at, expires_at)
       VALUES (?, ?, ?, NULL, ?, ?, ?, NULL)`,
    );
    db.transaction(() => {
      const now = Date.now();
      inputs.forEach((d, i) => {
        device.run(d.id, '{}', now);
        credential.run(randomBytes(12).toString('base64url'), d.id, d.id, rows[i]!.fingerprint, rows[i]!.spkiDer, now);
      });
    })();
    return performance.now() - start;
  } finally {
    db.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Runs the benchmark.
 *
 * @example
 * ```ts
 * const r = await benchRegistration(); console.log(r.lines.join('\n'));
 * ```
 */
export async function benchRegistration(): Promise<BenchResult> {
  const inputs = makeInputs();
  const rows = inputs.map((d) => {
    const p = parsePublicKey(d.pem);
    return { fingerprint: p.fingerprint, spkiDer: p.spkiDer };
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-'));
  const registryMs: number[] = [];
  const bareMs: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const runRegistry = async () => registryMs.push(await viaRegistry(path.join(dir, `registry-${round}.db`), inputs));
      const runBare = async () => bareMs.push(await viaBareStatement(path.join(dir, `bare-${round}.db`), inputs, rows));
      if (round % 2 === 0) {
        await runRegistry();
        await runBare();
      } else {
        await runBare();
        await runRegistry();
      }
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const registryRate = DEVICES / (median(registryMs) / 1000);
  const bareRate = DEVICES / (median(bareMs) / 1000);
  const ratio = registryRate / bareRate;
  return {
    name: 'registration',
    lines: [
      `batch registration of ${DEVICES} devices, median of ${ROUNDS} alternated rounds`,
      `  registry batch API (parse + validate + insert): ${Math.round(registryRate)} devices/s (${median(registryMs).toFixed(0)} ms)`,
      `  bare prepared statement, one transaction:       ${Math.round(bareRate)} devices/s (${median(bareMs).toFixed(0)} ms)`,
      `  ratio ${ratio.toFixed(3)} (target ≥ ${TARGET_RATIO}) ${ratio >= TARGET_RATIO ? 'OK' : 'BELOW TARGET'}`,
    ],
    metrics: {
      registryDevicesPerSecond: registryRate,
      bareDevicesPerSecond: bareRate,
      ratio,
      target: TARGET_RATIO,
    },
  };
}
