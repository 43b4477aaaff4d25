/**
 * `npm run bench -- revocation`: how long a revocation through the HTTP API takes to close the
 * device's live MQTT session (docs/protocol.md: "Blocking or deleting a device, or removing the
 * credential a session used, closes that session within 1 s"), on two arrangements in one run:
 * - single process: the compiled `latchkey up` as a user starts it (SQLite registry, defaults);
 * - cluster: three compiled `latchkey up --role both --node-id pN` processes on one Redis and one
 *   PostgreSQL registry (`--redis-url`, `--database-url`, both throwaway servers of the bench's own);
 *   the sessions are on nodes B and C, the revocations go through node A's HTTP API, so every close
 *   travels A → PostgreSQL (outbox + NOTIFY) → B's or C's change feed.
 * For each: `--devices` (default 200) devices registered through the admin API, each connected with
 * a fresh ES256 token (mqtt.js, clean: false), then revoked one after another — block
 * (PATCH blocked: true), key removal (DELETE the credential the session used, ?force=true, after a
 * second key was added) and delete — measuring from sending the HTTP request to the client's
 * 'close' event; and (between key removal and delete) all of them blocked at once, concurrent
 * PATCHes, measuring until the last session closed. Beside each: the HTTP response time, and how
 * long after its response each session closed. A write's own node answers once the change reached
 * its own broker, so a long response time is the write path's (queueing behind other writes), a
 * long close-after-response the change feed's lag to the other nodes. The test suite checks the
 * mechanism (test/cluster/up-nodes.test.ts, test/cluster/revocation.test.ts); the tail latency on a
 * loaded machine is machine speed, so it is measured here. A session still open 10 s after the
 * last request is counted, not waited for.
 */
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import os from 'node:os';
import mqtt, { type MqttClient } from 'mqtt';
import { mintConnectToken } from '../device-sdk/src/token/mint-token.ts';
import { startUp, tempDir, type RunningStack } from '../test/cli/cli-process.ts';
import { startPgCluster } from '../test/helpers/pg-cluster.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { makeDevices } from './broker-children.ts';
import { pct } from './broker-connect.ts';
import { option } from './connect.ts';
import type { BenchResult } from './types.ts';

/** sessions not closed this long after the last revocation request count as still open */
const CLOSE_WAIT_MS = 10_000;
/** connects in flight at once while (re)connecting the fleet */
const CONNECT_POOL = 20;
const ADMIN_TOKEN = randomBytes(24).toString('hex');

interface Arrangement {
  label: string;
  /** an admin request to the HTTP API the revocations go through */
  api(method: string, urlPath: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** the MQTT URLs the devices connect to, device i to `mqttUrls[i % length]` */
  mqttUrls: string[];
}

/** What to close at the end, last first, whatever happened. */
type Cleanup = Array<() => Promise<void> | void>;

async function runCleanup(cleanup: Cleanup): Promise<void> {
  for (const step of cleanup.reverse()) await Promise.resolve().then(step).catch((err: unknown) => console.error(`revocation bench cleanup: ${String(err)}`));
  cleanup.length = 0;
}

/** SIGTERM, then SIGKILL if it has not exited within 5 s. */
async function stopUp(stack: RunningStack): Promise<void> {
  const killer = setTimeout(() => stack.child.kill('SIGKILL'), 5_000);
  await stack.stop();
  clearTimeout(killer);
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** `latchkey up` (compiled bin) with `args`, on port 0, its child killed at cleanup and at exit. */
async function up(args: string[], cwd: string, cleanup: Cleanup): Promise<RunningStack> {
  const stack = await startUp(args, {
    cwd,
    env: { LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN },
    onSpawn: (child) => {
      children.add(child);
      child.once('exit', () => children.delete(child));
    },
  });
  cleanup.push(() => stopUp(stack));
  return stack;
}

function apiOf(httpUrl: string): Arrangement['api'] {
  return async (method, urlPath, body) => {
    const res = await fetch(`${httpUrl}${urlPath}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text === '' ? null : JSON.parse(text) };
  };
}

async function startSingle(cleanup: Cleanup): Promise<Arrangement> {
  const tmp = tempDir('bench-revocation-up');
  cleanup.push(tmp.cleanup);
  const stack = await up(['--data-dir', tmp.dir], tmp.dir, cleanup);
  return { label: 'single process (latchkey up, SQLite)', api: apiOf(stack.httpUrl), mqttUrls: [stack.mqttUrl] };
}

async function startCluster(cleanup: Cleanup): Promise<Arrangement> {
  const redis = await startRedis();
  cleanup.push(() => redis.close());
  const pg = await startPgCluster();
  cleanup.push(() => pg.destroy());
  const tmp = tempDir('bench-revocation-nodes');
  cleanup.push(tmp.cleanup);
  const node = (id: string) => up(['--role', 'both', '--node-id', id, '--data-dir', tmp.dir, '--redis-url', redis.url, '--database-url', pg.url], tmp.dir, cleanup);
  // A first: it migrates the empty database; B and C then only read the schema
  const a = await node('p1');
  const [b, c] = await Promise.all([node('p2'), node('p3')]);
  return { label: 'cluster (3 × latchkey up, Redis + PostgreSQL)', api: apiOf(a.httpUrl), mqttUrls: [b.mqttUrl, c.mqttUrl] };
}

interface Device {
  id: string;
  keys: Array<{ privateKey: KeyObject; kid: string }>;
}

interface Session {
  id: string;
  client: MqttClient;
  /** when the client saw 'close' (performance clock) */
  closedAt: Promise<number>;
  closed: number | null;
}

async function expectStatus(what: string, res: Promise<{ status: number; json: any }>, want: number): Promise<any> {
  const r = await res;
  if (r.status !== want) throw new Error(`${what}: HTTP ${r.status}, expected ${want}: ${JSON.stringify(r.json)}`);
  return r.json;
}

/** Registers `n` devices through the batch endpoint; each with the kid of its one credential. */
async function register(arr: Arrangement, n: number): Promise<Device[]> {
  const made = makeDevices(n).map((d, i) => ({ ...d, id: `rv-${String(i).padStart(5, '0')}` }));
  await expectStatus('POST /v1/devices:batch', arr.api('POST', '/v1/devices:batch', { devices: made.map((d) => ({ id: d.id, publicKey: d.publicKeyPem })) }), 201);
  const kids = new Map<string, string>();
  for (let cursor: string | null = ''; cursor !== null; ) {
    const page: { devices: Array<{ id: string; credentials: Array<{ kid: string }> }>; nextCursor: string | null } = await expectStatus(
      'GET /v1/devices',
      arr.api('GET', `/v1/devices?limit=1000${cursor === '' ? '' : `&cursor=${encodeURIComponent(cursor)}`}`),
      200,
    );
    for (const d of page.devices) kids.set(d.id, d.credentials[0]!.kid);
    cursor = page.nextCursor;
  }
  return made.map((d) => ({ id: d.id, keys: [{ privateKey: d.privateKey, kid: kids.get(d.id)! }] }));
}

/** Connects every device with a fresh token of key `key`, CONNECT_POOL at a time, then waits until the registry reads all of them connected. */
async function connectAll(arr: Arrangement, devices: Device[], key: number): Promise<Session[]> {
  const sessions: Session[] = new Array(devices.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONNECT_POOL }, async () => {
      while (next < devices.length) {
        const i = next++;
        const d = devices[i]!;
        const k = d.keys[key]!;
        const { token } = await mintConnectToken({ subject: d.id, privateKey: k.privateKey, kid: k.kid });
        const client = await mqtt.connectAsync(arr.mqttUrls[i % arr.mqttUrls.length]!, {
          clientId: d.id,
          username: 'x',
          password: token,
          clean: false,
          reconnectPeriod: 0,
          connectTimeout: 30_000,
          protocolVersion: 4,
        });
        client.on('error', () => undefined);
        const session: Session = { id: d.id, client, closed: null, closedAt: new Promise<number>((resolve) => client.once('close', () => resolve(performance.now()))) };
        void session.closedAt.then((t) => (session.closed = t));
        sessions[i] = session;
      }
    }),
  );
  // the status flush (about 1 s) and, in the cluster, the other nodes have caught up: the burst of connects is over
  const deadline = Date.now() + 30_000;
  const want = new Set(devices.map((d) => d.id));
  for (;;) {
    let connected = 0;
    for (let cursor: string | null = ''; cursor !== null; ) {
      const page: { devices: Array<{ id: string; status: { connected: boolean } }>; nextCursor: string | null } = await expectStatus(
        'GET /v1/devices',
        arr.api('GET', `/v1/devices?limit=1000${cursor === '' ? '' : `&cursor=${encodeURIComponent(cursor)}`}`),
        200,
      );
      connected += page.devices.filter((x) => want.has(x.id) && x.status.connected).length;
      cursor = page.nextCursor;
    }
    if (connected === devices.length) break;
    if (Date.now() > deadline) throw new Error(`${arr.label}: ${connected} of ${devices.length} devices read connected after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const early = sessions.filter((s) => s.closed !== null);
  if (early.length > 0) throw new Error(`${arr.label}: ${early.length} sessions closed before any revocation (first: ${early[0]!.id})`);
  return sessions;
}

interface Figures {
  /** request sent → 'close', ms, of the sessions that closed */
  closeMs: number[];
  /** request sent → HTTP response, ms */
  httpMs: number[];
  /** HTTP response → 'close', ms (negative: the session closed before the response arrived) */
  afterResponseMs: number[];
  /** sessions still open CLOSE_WAIT_MS after the last request */
  open: number;
  /** first request sent → last close, and → last response, ms (the concurrent variant's figures) */
  allClosedMs: number;
  allAnsweredMs: number;
}

/**
 * Waits for the sessions' closes (at most CLOSE_WAIT_MS after the last request): session i's
 * revocation request went out at `sent[i]` and was answered at `answered[i]`.
 */
async function collect(sessions: Session[], sent: number[], answered: number[]): Promise<Figures> {
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref());
  await Promise.race([Promise.all(sessions.map((s) => s.closedAt)), timeout]);
  const first = Math.min(...sent);
  const f: Figures = { closeMs: [], httpMs: [], afterResponseMs: [], open: 0, allClosedMs: 0, allAnsweredMs: Math.max(...answered) - first };
  sessions.forEach((s, i) => {
    f.httpMs.push(answered[i]! - sent[i]!);
    if (s.closed === null) {
      f.open++;
      s.client.end(true);
    } else {
      f.closeMs.push(s.closed - sent[i]!);
      f.afterResponseMs.push(s.closed - answered[i]!);
      f.allClosedMs = Math.max(f.allClosedMs, s.closed - first);
    }
  });
  return f;
}

type Revoke = (id: string) => Promise<{ status: number; json: any }>;

/** Revokes each session's device in turn (the next request after the previous response). */
async function revokeInTurn(sessions: Session[], request: Revoke, want: number): Promise<Figures> {
  const sent: number[] = [];
  const answered: number[] = [];
  for (const s of sessions) {
    sent.push(performance.now());
    await expectStatus(`revoke ${s.id}`, request(s.id), want);
    answered.push(performance.now());
  }
  return collect(sessions, sent, answered);
}

/** Revokes every session's device at once. */
async function revokeAtOnce(sessions: Session[], request: Revoke, want: number): Promise<Figures> {
  const sent: number[] = [];
  const answered: number[] = [];
  await Promise.all(
    sessions.map(async (s, i) => {
      sent[i] = performance.now();
      await expectStatus(`revoke ${s.id}`, request(s.id), want);
      answered[i] = performance.now();
    }),
  );
  return collect(sessions, sent, answered);
}

const KINDS = ['block', 'key removal', 'delete', 'block, all at once'] as const;
type Kind = (typeof KINDS)[number];

async function measureArrangement(arr: Arrangement, n: number): Promise<Map<Kind, Figures>> {
  const out = new Map<Kind, Figures>();
  const devices = await register(arr, n);
  const block = (id: string) => arr.api('PATCH', `/v1/devices/${id}`, { blocked: true });
  const unblockAll = async () => {
    for (const d of devices) await expectStatus(`unblock ${d.id}`, arr.api('PATCH', `/v1/devices/${d.id}`, { blocked: false }), 200);
  };

  out.set('block', await revokeInTurn(await connectAll(arr, devices, 0), block, 200));
  await unblockAll();

  // key removal: a second key each; the sessions made with the first end when it is removed (in use: force)
  for (const d of devices) {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cred = await expectStatus(`add key ${d.id}`, arr.api('POST', `/v1/devices/${d.id}/credentials`, { publicKey: k.publicKey.export({ type: 'spki', format: 'pem' }) }), 201);
    d.keys.push({ privateKey: k.privateKey, kid: cred.kid as string });
  }
  const firstKid = new Map(devices.map((d) => [d.id, d.keys[0]!.kid]));
  out.set('key removal', await revokeInTurn(await connectAll(arr, devices, 0), (id) => arr.api('DELETE', `/v1/devices/${id}/credentials/${firstKid.get(id)}?force=true`), 204));

  // on the second key from here on
  out.set('block, all at once', await revokeAtOnce(await connectAll(arr, devices, 1), block, 200));
  await unblockAll();

  out.set('delete', await revokeInTurn(await connectAll(arr, devices, 1), (id) => arr.api('DELETE', `/v1/devices/${id}`), 204));
  return out;
}

const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x)} ms` : '—');
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

export async function benchRevocation(): Promise<BenchResult> {
  const n = option('devices', 200);
  if (n < 1) throw new TypeError('--devices must be at least 1');
  const lines: string[] = [
    `${n} devices per arrangement, each connected (mqtt.js, clean: false, a fresh ES256 token), revoked through the HTTP API; latency = HTTP request sent → the client's 'close'; "in turn": each request after the previous response; a session still open ${CLOSE_WAIT_MS / 1000} s after the last request counts as open`,
  ];
  const metrics: Record<string, number> = { devices: n };
  const cleanup: Cleanup = [];
  const onSignal = (signal: NodeJS.Signals) => {
    void runCleanup(cleanup).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    for (const [key, start] of [
      ['single', startSingle],
      ['cluster', startCluster],
    ] as const) {
      const loadAtStart = load();
      const arr = await start(cleanup);
      const label = key === 'cluster' ? `${arr.label}, sessions on B and C, revoked through A` : arr.label;
      lines.push(`${label}; load average at start ${loadAtStart} (${os.cpus().length} cores)`);
      const figures = await measureArrangement(arr, n);
      for (const kind of KINDS) {
        const f = figures.get(kind)!;
        const over = f.closeMs.filter((x) => x > 1000).length;
        const cols = [
          `  ${kind.padEnd(18)} p50 ${ms(pct(f.closeMs, 50)).padStart(7)}  p99 ${ms(pct(f.closeMs, 99)).padStart(7)}  p100 ${ms(pct(f.closeMs, 100)).padStart(7)}  over 1 s ${over}/${n}`,
          ...(f.open > 0 ? [`STILL OPEN ${f.open}`] : []),
          `(HTTP p50 ${ms(pct(f.httpMs, 50))} p100 ${ms(pct(f.httpMs, 100))}; close after the response p100 ${ms(pct(f.afterResponseMs, 100))})`,
          ...(kind === 'block, all at once' ? [`all answered ${ms(f.allAnsweredMs)}, all closed ${ms(f.allClosedMs)} after the first request`] : []),
        ];
        lines.push(cols.join('  '));
        const m = `${key}_${kind.replace(/[^a-z]+/g, '_')}`;
        Object.assign(metrics, {
          [`${m}_p50`]: pct(f.closeMs, 50),
          [`${m}_p99`]: pct(f.closeMs, 99),
          [`${m}_p100`]: pct(f.closeMs, 100),
          [`${m}_over1s`]: over,
          [`${m}_open`]: f.open,
          [`${m}_httpP50`]: pct(f.httpMs, 50),
          [`${m}_afterResponseP100`]: pct(f.afterResponseMs, 100),
          [`${m}_allAnsweredMs`]: f.allAnsweredMs,
          [`${m}_allClosedMs`]: f.allClosedMs,
        });
      }
      lines.push(`  load average at end ${load()}`);
      await runCleanup(cleanup);
    }
  } finally {
    await runCleanup(cleanup);
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
  return { name: 'revocation', lines, metrics };
}
