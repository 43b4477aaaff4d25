/**
 * Child process for crash.test.ts: commits one device, then runs a 10,000-device batch and,
 * from inside that transaction (while reading the last item's key), tells the parent so on
 * stdout and blocks until it is SIGKILLed. Keys are synthetic: the registry stores what it is
 * given, and this test is about the transaction, not about parsing.
 * Usage: crash-child.ts <SQLite file | PostgreSQL URL> [schema]
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { openRegistry, type CredentialKey, type NewDevice } from '../../provisioning/src/registry/index.ts';

const [location, schema] = process.argv.slice(2);
if (location === undefined) throw new TypeError('usage: crash-child.ts <db file | postgres URL> [schema]');

function key(i: number): CredentialKey {
  return { fingerprint: createHash('sha256').update(`crash-${i}`).digest('hex'), spkiDer: randomBytes(91), expiresAt: null };
}

const registry = await openRegistry(location, { clock: Date.now, postgres: { schema: schema ?? null } });
await registry.devices.create({ id: 'committed-1', key: key(-1) }, 'admin');

const COUNT = 10_000;
const batch: NewDevice[] = Array.from({ length: COUNT }, (_, i) => ({ id: `batch-${i}`, key: key(i), metadata: { i } }));
const last = key(COUNT - 1);
batch[COUNT - 1] = {
  id: `batch-${COUNT - 1}`,
  key: {
    get fingerprint() {
      writeSync(1, 'inside-transaction\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // until SIGKILL
      return last.fingerprint;
    },
    spkiDer: last.spkiDer,
    expiresAt: null,
  },
};
await registry.devices.createMany(batch, 'admin');
writeSync(1, 'batch-committed\n'); // never reached
