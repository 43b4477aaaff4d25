import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { SIGNATURE_VERIFY_PARAMS, signatureFits, type PreparedToken, type SignatureAlgorithm } from '@latchkey/device-sdk/protocol';

/**
 * The thread's whole program (CommonJS, `eval`: the same text under vitest's TypeScript and the
 * compiled broker, and nothing to resolve at run time). It knows no token rule: it receives the
 * keys (KeyObjects, cloned by postMessage: the key material is shared, not re-imported), the
 * table of `crypto.verify` parameters per algorithm (SIGNATURE_VERIFY_PARAMS, from the protocol
 * core), and batches of (signing input, signature, candidates); it answers, per job, the index of
 * the first candidate whose key verifies, -1 for none, -2 for a key id it does not hold (never
 * sent by a correct pool: refused as a server error).
 */
const WORKER_PROGRAM = `
const { parentPort, workerData } = require('node:worker_threads');
const { verify } = require('node:crypto');
const params = workerData.params;
const keys = new Map();
parentPort.on('message', (m) => {
  if (m.crash === true) throw new Error('verify thread stopped on request (test hook)');
  for (let i = 0; i < m.keys.length; i += 2) keys.set(m.keys[i], m.keys[i + 1]);
  const bytes = new Uint8Array(m.bytes);
  const meta = m.meta;
  const out = new Int32Array(m.count);
  let at = 0;
  let off = 0;
  for (let j = 0; j < m.count; j++) {
    const dataLen = meta[at++];
    const sigLen = meta[at++];
    const n = meta[at++];
    const p = params[meta[at++]];
    const data = bytes.subarray(off, off + dataLen);
    off += dataLen;
    const sig = bytes.subarray(off, off + sigLen);
    off += sigLen;
    let found = -1;
    for (let c = 0; c < n; c++) {
      const key = keys.get(meta[at++]);
      if (found !== -1) continue;
      if (key === undefined) { found = -2; continue; }
      let ok = false;
      try { ok = verify(p.digest, data, Object.assign({ key }, p.options), sig); } catch { ok = false; }
      if (ok) found = c;
    }
    out[j] = found;
  }
  for (const id of m.forget) keys.delete(id);
  parentPort.postMessage(out, [out.buffer]);
});
`;

/** The algorithms in the order of the parameter table the threads receive (a job names its algorithm by index). */
const ALGORITHMS = Object.keys(SIGNATURE_VERIFY_PARAMS) as SignatureAlgorithm[];
const PARAMS = ALGORITHMS.map((alg) => ({ digest: SIGNATURE_VERIFY_PARAMS[alg].digest, options: { ...SIGNATURE_VERIFY_PARAMS[alg].options } }));

/** Jobs per message at most: a message of 64 tokens is ~40 KB; more waiting than that go in the next one. */
const MAX_BATCH = 64;

/** One signature check waiting for its answer. */
interface Job {
  readonly prepared: PreparedToken;
  /** the candidates whose key type and signature length fit (signatureFits), in the token's order */
  readonly fitting: PreparedToken['candidates'];
  readonly resolve: (kid: string | null) => void;
  readonly reject: (err: Error) => void;
}

/** One thread, and what the pool knows of its state. */
interface Slot {
  readonly worker: Worker;
  /** batches posted and not yet answered, oldest first (a thread answers in order) */
  readonly inFlight: Job[][];
  /** jobs in `inFlight` */
  pending: number;
  /** the keys this thread holds, by the id the pool gave each (LRU: most recently used last) */
  readonly keyIds: Map<KeyObject, number>;
  nextKeyId: number;
  /** ended (exited, crashed or terminated): its answers are ignored, its jobs failed */
  dead: boolean;
}

export interface VerifyPoolOptions {
  /** Threads (≥ 1). */
  readonly threads: number;
  /** Keys each thread keeps (LRU); a key evicted and needed again is sent again. */
  readonly keyCacheSize: number;
  /** A thread ended without being asked to (crash, out of memory): its connects were refused, it is replaced. */
  readonly onThreadFailure: (err: unknown) => void;
}

/**
 * Signature checks of connect tokens on `worker_threads` (issue 12, `verifyThreads`;
 * docs/architecture.md §Verify threads). The main thread keeps every rule: it decodes the token,
 * checks the header, selects the candidate credentials and the cheap signature checks
 * ({@link signatureFits}), then, after the answer, the claims, subject and jti. A thread only
 * runs `crypto.verify` over the candidates in order and names the first that verifies: the same
 * answer `findSigner` gives inline.
 *
 * Jobs submitted in one turn of the event loop go out together at `setImmediate`, up to
 * {@link MAX_BATCH} per message, each batch to the thread with the fewest jobs pending; every key
 * goes to a thread once (then an id), within a per-thread LRU the pool mirrors exactly (messages
 * are ordered), so a key the credential cache dropped and re-imported is a new key to the threads.
 *
 * A thread that ends unasked fails its jobs at once with an Error (the broker refuses them with
 * CONNACK 3, server unavailable) and is replaced at the next job; `close()` fails what is left.
 * Threads are started with the first job, and unref'd (they never keep a process alive).
 *
 * @example
 * ```ts
 * const pool = new VerifyPool({ threads: 1, keyCacheSize: 2048, onThreadFailure: (err) => log.error({ err }, 'verify thread failed') });
 * const kid = await pool.findSigner(prepareTokenVerification(token, opts)); // null: no candidate verifies
 * await pool.close();
 * ```
 */
export class VerifyPool {
  readonly threads: number;
  readonly #keyCacheSize: number;
  readonly #onThreadFailure: (err: unknown) => void;
  readonly #slots: (Slot | null)[];
  #queue: Job[] = [];
  #scheduled: NodeJS.Immediate | null = null;
  #closed = false;
  #checked = 0;
  #crashBefore = -1;
  /** Tests only: called right after a batch is posted to thread `index`. */
  onPostedForTesting: ((index: number) => void) | null = null;

  constructor(opts: VerifyPoolOptions) {
    if (!Number.isInteger(opts.threads) || opts.threads < 1) throw new TypeError('threads must be a positive integer');
    if (!Number.isInteger(opts.keyCacheSize) || opts.keyCacheSize < MAX_BATCH) throw new TypeError(`keyCacheSize must be an integer ≥ ${MAX_BATCH}`);
    this.threads = opts.threads;
    this.#keyCacheSize = opts.keyCacheSize;
    this.#onThreadFailure = opts.onThreadFailure;
    this.#slots = Array.from({ length: opts.threads }, () => null);
  }

  /** Threads running now (they start with the first job and are replaced after a failure). */
  get running(): number {
    return this.#slots.filter((s) => s !== null && !s.dead).length;
  }

  /** Jobs the threads answered since the pool started. */
  get checked(): number {
    return this.#checked;
  }

  /**
   * The kid of the first candidate of `prepared` whose key verifies its signature, or null when
   * none does (`findSigner`'s answer, without its throw). Synchronous (null) when no candidate
   * fits; rejects when the thread holding the job ended or the pool closed.
   */
  findSigner(prepared: PreparedToken): Promise<string | null> | null {
    const { header, decoded, candidates } = prepared;
    let fitting: PreparedToken['candidates'] = candidates;
    for (const c of candidates) {
      if (!signatureFits(header.alg, c.key, decoded.signature)) {
        fitting = candidates.filter((k) => signatureFits(header.alg, k.key, decoded.signature));
        break;
      }
    }
    if (fitting.length === 0) return null;
    if (this.#closed) return Promise.reject(new Error('the verify pool is closed'));
    return new Promise<string | null>((resolve, reject) => {
      this.#queue.push({ prepared, fitting, resolve, reject });
      this.#scheduled ??= setImmediate(this.#flush);
    });
  }

  /** Posts every queued job, in batches, to the least busy threads. */
  readonly #flush = (): void => {
    this.#scheduled = null;
    const queue = this.#queue;
    this.#queue = [];
    for (let from = 0; from < queue.length; from += MAX_BATCH) {
      const index = this.#leastBusy();
      const batch = queue.slice(from, from + MAX_BATCH);
      let slot: Slot;
      try {
        slot = this.#slotAt(index);
        if (this.#crashBefore === index) {
          this.#crashBefore = -1;
          slot.worker.postMessage({ crash: true });
        }
      } catch (err) {
        // no thread could start (out of memory, a thread limit): these connects fail, the broker goes on
        const failure = new Error('no verify thread could start', { cause: err });
        for (const job of batch) job.reject(failure);
        this.#onThreadFailure(err);
        continue;
      }
      this.#post(slot, batch);
      this.onPostedForTesting?.(index);
    }
  };

  #leastBusy(): number {
    let best = 0;
    let bestPending = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.#slots.length; i++) {
      const s = this.#slots[i];
      const pending = s === null || s === undefined || s.dead ? 0 : s.pending;
      if (pending < bestPending) {
        best = i;
        bestPending = pending;
      }
    }
    return best;
  }

  /** The live thread at `index`, started when there is none. */
  #slotAt(index: number): Slot {
    const existing = this.#slots[index];
    if (existing !== null && existing !== undefined && !existing.dead) return existing;
    const worker = new Worker(WORKER_PROGRAM, { eval: true, workerData: { params: PARAMS }, stdout: false, stderr: false });
    worker.unref();
    const slot: Slot = { worker, inFlight: [], pending: 0, keyIds: new Map(), nextKeyId: 1, dead: false };
    worker.on('message', (out: Int32Array) => this.#answered(slot, out));
    worker.on('error', (err) => this.#ended(slot, err));
    worker.on('exit', (code) => this.#ended(slot, new Error(`verify thread exited with code ${code}`)));
    this.#slots[index] = slot;
    return slot;
  }

  #post(slot: Slot, batch: Job[]): void {
    let bytes = 0;
    let metaLength = 0;
    for (const job of batch) {
      bytes += job.prepared.decoded.signingInput.byteLength + job.prepared.decoded.signature.byteLength;
      metaLength += 4 + job.fitting.length;
    }
    const buffer = new ArrayBuffer(bytes);
    const view = new Uint8Array(buffer);
    const meta = new Int32Array(metaLength);
    const keys: unknown[] = [];
    const forget: number[] = [];
    let at = 0;
    let off = 0;
    for (const job of batch) {
      const { signingInput, signature } = job.prepared.decoded;
      view.set(signingInput, off);
      off += signingInput.byteLength;
      view.set(signature, off);
      off += signature.byteLength;
      meta[at++] = signingInput.byteLength;
      meta[at++] = signature.byteLength;
      meta[at++] = job.fitting.length;
      meta[at++] = ALGORITHMS.indexOf(job.prepared.header.alg);
      for (const c of job.fitting) meta[at++] = this.#keyId(slot, c.key, keys, forget);
    }
    slot.inFlight.push(batch);
    slot.pending += batch.length;
    try {
      slot.worker.postMessage({ keys, forget, bytes: buffer, meta, count: batch.length }, [buffer, meta.buffer]);
    } catch (err) {
      // the message could not be sent: the thread's key table may now differ from the pool's mirror, so it is replaced
      void slot.worker.terminate();
      this.#ended(slot, err);
    }
  }

  /** The id `key` has in `slot`'s thread; a key new to it joins `keys`, and an evicted one `forget`. */
  #keyId(slot: Slot, key: KeyObject, keys: unknown[], forget: number[]): number {
    const known = slot.keyIds.get(key);
    if (known !== undefined) {
      slot.keyIds.delete(key);
      slot.keyIds.set(key, known);
      return known;
    }
    const id = slot.nextKeyId++;
    if (slot.keyIds.size >= this.#keyCacheSize) {
      // the thread drops it after this batch: a job of this batch that named it still finds it
      const oldest = slot.keyIds.entries().next().value as [KeyObject, number];
      slot.keyIds.delete(oldest[0]);
      forget.push(oldest[1]);
    }
    slot.keyIds.set(key, id);
    keys.push(id, key);
    return id;
  }

  #answered(slot: Slot, out: Int32Array): void {
    if (slot.dead) return;
    const batch = slot.inFlight.shift();
    if (batch === undefined) return;
    slot.pending -= batch.length;
    this.#checked += batch.length;
    for (let j = 0; j < batch.length; j++) {
      const job = batch[j] as Job;
      const found = out[j] as number;
      if (found === -2) job.reject(new Error('the verify thread did not hold a key it was sent'));
      else job.resolve(found === -1 ? null : (job.fitting[found] as PreparedToken['candidates'][number]).kid);
    }
  }

  /** A thread ended: its jobs fail now, and it is replaced at the next job. */
  #ended(slot: Slot, err: unknown): void {
    if (slot.dead) return;
    slot.dead = true;
    const index = this.#slots.indexOf(slot);
    if (index !== -1) this.#slots[index] = null;
    this.#failJobs(slot, err);
    if (!this.#closed) this.#onThreadFailure(err);
  }

  #failJobs(slot: Slot, err: unknown): void {
    const batches = slot.inFlight.splice(0);
    slot.pending = 0;
    const failure = new Error('the verify thread ended before answering', { cause: err });
    for (const batch of batches) for (const job of batch) job.reject(failure);
  }

  /** Tests only: terminates thread `index` as a crash would end it (its jobs fail; `onThreadFailure` is told). */
  async terminateThreadForTesting(index: number): Promise<void> {
    const slot = this.#slots[index];
    if (slot === null || slot === undefined) return;
    const ended = slot.worker.terminate();
    this.#ended(slot, new Error('verify thread terminated (test hook)'));
    await ended;
  }

  /** Tests only: the next batch for thread `index` is preceded by a message on which the thread throws (it never answers that batch). */
  crashThreadForTesting(index: number): void {
    this.#crashBefore = index;
  }

  /** Fails every job not yet answered and ends the threads. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#scheduled !== null) clearImmediate(this.#scheduled);
    this.#scheduled = null;
    const closed = new Error('the verify pool is closed');
    for (const job of this.#queue.splice(0)) job.reject(closed);
    const ending: Promise<number>[] = [];
    for (let i = 0; i < this.#slots.length; i++) {
      const slot = this.#slots[i];
      if (slot === null || slot === undefined) continue;
      this.#slots[i] = null;
      slot.dead = true;
      this.#failJobs(slot, closed);
      ending.push(slot.worker.terminate());
    }
    await Promise.all(ending);
  }
}
