/**
 * `npm run bench -- verify-offload` (issue 12, "both cores"): what moving the ES256 check off the
 * broker's main thread would save that thread. The broker's connect rate is bound by its one
 * JavaScript thread, so a verify pool pays only if the main thread's side of a round trip to a
 * worker (post the token, receive the answer) costs clearly less than the verify itself.
 * Measured here, in one process, as the main thread's busy time per token: wall time around the
 * main thread's own work only (posting, receiving; never the wait), which is CPU time while it is
 * not preempted (Node 20 has no per-thread CPU clock; the kernel's schedstat of a running thread
 * lags by up to a tick, too coarse for a few µs):
 * - `inline`: crypto.verify on the main thread (what the broker does today);
 * - `worker, batch B`: B tokens posted to one worker thread in one message, answers back in one
 *   message (B = 1: no batching; larger B amortises the message cost, but a CONNECT waits for its
 *   batch to fill or for the next turn of the loop).
 * Rounds alternate; medians reported.
 */
import { generateKeyPairSync, sign, verify as cryptoVerify } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { median } from './broker-connect.ts';
import type { BenchResult } from './types.ts';

const TOKENS = 2_000;
const ROUNDS = 5;
const BATCHES = [1, 8, 32];

/** The main thread's clock, ns (see above). */
const threadCpuNs = (): number => Number(process.hrtime.bigint());

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const key = createPublicKey({ key: Buffer.from(workerData.spki), format: 'der', type: 'spki' });
parentPort.on('message', (batch) => {
  const out = new Uint8Array(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const [data, sig] = batch[i];
    out[i] = verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig) ? 1 : 0;
  }
  parentPort.postMessage(out);
});
`;

export async function benchVerifyOffload(): Promise<BenchResult> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const items = Array.from({ length: TOKENS }, (_, i) => {
    const data = Buffer.from(`eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.${Buffer.from(JSON.stringify({ sub: `device-${i}`, aud: 'latchkey', iat: 1, exp: 2 })).toString('base64url')}`);
    return [data, sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' })] as [Buffer, Buffer];
  });
  const worker = new Worker(WORKER, { eval: true, workerData: { spki: publicKey.export({ type: 'spki', format: 'der' }) } });
  const inline = (): number => {
    const before = threadCpuNs();
    let ok = 0;
    for (const [data, sig] of items) if (verifyInline(data, sig)) ok++;
    if (ok !== items.length) throw new Error('inline verify failed');
    return (threadCpuNs() - before) / 1000 / items.length;
  };
  const verifyInline = (data: Buffer, sig: Buffer) => cryptoVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig);
  const viaWorker = async (batch: number): Promise<number> => {
    let cpu = 0;
    let ok = 0;
    // a window of 4 batches in flight, as concurrent CONNECTs would keep the pool busy
    let next = 0;
    const send = (): Promise<void> | null => {
      if (next >= items.length) return null;
      const slice = items.slice(next, next + batch);
      next += batch;
      const t0 = threadCpuNs();
      const answered = new Promise<void>((resolve) => {
        worker.once('message', (out: Uint8Array) => {
          const t1 = threadCpuNs();
          for (const v of out) ok += v;
          cpu += threadCpuNs() - t1;
          resolve();
        });
      });
      worker.postMessage(slice);
      cpu += threadCpuNs() - t0;
      return answered;
    };
    // one batch at a time (the `once` listener pairs each answer with its batch); the main thread's
    // cost is counted around post and receive only, never the wait
    for (let p = send(); p !== null; p = send()) await p;
    if (ok !== items.length) throw new Error('worker verify failed');
    return cpu / 1000 / items.length;
  };
  const stats = new Map<string, number[]>([['inline', []], ...BATCHES.map((b) => [`batch${b}`, []] as [string, number[]])]);
  try {
    inline();
    for (const b of BATCHES) await viaWorker(b);
    for (let r = 0; r < ROUNDS; r++) {
      stats.get('inline')!.push(inline());
      for (const b of BATCHES) stats.get(`batch${b}`)!.push(await viaWorker(b));
    }
  } finally {
    await worker.terminate();
  }
  const metrics: Record<string, number> = {};
  const lines = [`main-thread busy time per token, ${TOKENS} ES256 tokens × ${ROUNDS} alternated rounds, median:`];
  for (const [k, xs] of stats) {
    metrics[`${k}MainThreadUs`] = median(xs);
    lines.push(`  ${k === 'inline' ? 'inline crypto.verify' : `worker, batch ${k.slice(5)}`}: ${median(xs).toFixed(1)} µs (rounds ${xs.map((x) => x.toFixed(1)).join(' ')})`);
  }
  lines.push(`main-thread time saved per fresh CONNECT by a worker: ${(metrics['inlineMainThreadUs']! - metrics['batch1MainThreadUs']!).toFixed(1)} µs unbatched, ${(metrics['inlineMainThreadUs']! - metrics['batch8MainThreadUs']!).toFixed(1)} µs in batches of 8`);
  return { name: 'verify-offload', lines, metrics };
}

