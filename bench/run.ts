/**
 * `npm run bench` — every benchmark, each measuring latchkey side by side with its baseline in the
 * same run (these machines are shared and noisy: only ratios from one run are compared).
 * `npm run bench -- registration broker-connect` runs a subset. Runs from the TypeScript sources
 * through tsx (a development tool: `node --conditions=@latchkey/source --import tsx`); what it
 * measures of the shipped code (the bin, the packed SDK) runs compiled. Results: stdout, and
 * bench/results/latest.json (not committed); docs/benchmarks.md records a run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { BenchResult } from './types.ts';

const benches: Record<string, () => Promise<BenchResult>> = {
  registration: async () => (await import('./registration.ts')).benchRegistration(),
  'broker-connect': async () => (await import('./broker-connect.ts')).benchBrokerConnect(),
  'broker-memory': async () => (await import('./broker-memory.ts')).benchBrokerMemory(),
  'connect-timing': async () => (await import('./connect-timing.ts')).benchConnectTiming(),
  'sdk-footprint': async () => (await import('./sdk-footprint.ts')).benchSdkFootprint(),
  'cli-startup': async () => (await import('./cli-startup.ts')).benchCliStartup(),
  signed: async () => (await import('./signed.ts')).benchSigned(),
  cluster: async () => (await import('./cluster.ts')).benchCluster(),
  console: async () => (await import('./console.ts')).benchConsole(),
  connect: async () => (await import('./connect.ts')).benchConnect(),
  'verify-offload': async () => (await import('./verify-offload.ts')).benchVerifyOffload(),
  gcp: async () => (await import('./gcp.ts')).benchGcp(),
  revocation: async () => (await import('./revocation.ts')).benchRevocation(),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const w of wanted) if (!(w in benches)) throw new TypeError(`unknown benchmark "${w}" (have: ${Object.keys(benches).join(', ')})`);
const selected = wanted.length > 0 ? wanted : Object.keys(benches);

const cpus = os.cpus();
console.log(`machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${new Date().toISOString()}`);
const results: BenchResult[] = [];
for (const name of selected) {
  console.log(`\n## ${name}`);
  const started = performance.now();
  const result = await benches[name]!();
  for (const line of result.lines) console.log(line);
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
  results.push(result);
}
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/latest.json', import.meta.url), JSON.stringify({ at: new Date().toISOString(), results }, null, 2));
