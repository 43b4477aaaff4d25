/**
 * `npm run bench -- connect` (issue 12): connect cost and reconnect storms, side by side in one
 * run, with one raw-socket load generator (hand-built MQTT 3.1.1 CONNECT/DISCONNECT over net
 * sockets) against:
 * - `mosquitto`: Mosquitto 2 with a `password_file` (PBKDF2-SHA512 by `mosquitto_passwd -U`),
 *   installed from Debian if missing, as .ci/run does for mosquitto-clients;
 * - `bare`: aedes 1.2 with no authentication; `floor`: the same aedes plus a bare
 *   `crypto.verify` of the token (bench/broker-child.ts);
 * - `up`: the full `latchkey up` as a user runs it (compiled bin, defaults, log on stderr) with
 *   `fresh` tokens (each used once) and `reused` ones (already verified by this broker). Its
 *   default `--verify-threads` is the cores − 1 (1 on a 2-core host): beside it runs a second
 *   `latchkey up --verify-threads 0` (signatures on the main thread) with fresh tokens.
 * Broker CPU is the broker process's own CPU time (every thread's, /proc/<pid>/task/<tid>/schedstat,
 * ns), not wall time, and separately its main thread's (the thread that bounds a Node broker's rate);
 * connects/s is the load generator's wall rate (it shares the cores). Rounds
 * rotate the order of the brokers; the figure is the median round. A round's CPU window closes only
 * after a settle period longer than latchkey's status flush (1 s).
 *
 * Then the reconnect storm: `--storm` (default 10,000) registered devices, which each connected
 * once before, reconnect paced (500 mid-connect at any moment) and unpaced (all at once), every
 * socket kept open until all are in, against latchkey and Mosquitto in the same run; then the same
 * devices all with fresh tokens (never seen by the broker), paced, against both latchkey processes.
 *
 * Options (after `--`): --rounds=N (default 6), --per-connector=N (cycles per connector per round,
 * default 20), --connectors=N (default 50), --storm=N (0: no storm), --inflight=N (default 500),
 * --up-flags='--verify-threads 2 …' (extra flags of the default `latchkey up`).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mintConnectToken } from '../device-sdk/src/token/mint-token.ts';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';
import { DEFAULT_BROKER_CONFIG } from '../broker/src/config.ts';
import { openRegistry } from '../provisioning/src/registry/index.ts';
import { connectPacket, makeDevices, startBrokerChild, type BenchDevice } from './broker-children.ts';
import { cycle, median, pct } from './broker-connect.ts';
import type { BenchResult } from './types.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'cli/bin/latchkey.js');
const MOSQUITTO = '/usr/sbin/mosquitto';
const SETTLE_MS = 1_500;
const NODE_FLAGS = ['--no-memory-reducer', ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROF] : [])];
const DISCONNECT = Buffer.from([0xe0, 0x00]);
/** a storm CONNECT without a CONNACK within this long counts as dropped */
const STORM_ATTEMPT_TIMEOUT_MS = 60_000;

/** `--name=N` after `--` (a non-negative integer), or `fallback`. */
export function option(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (arg === undefined) return fallback;
  const v = Number(arg.slice(name.length + 3));
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`--${name} must be a non-negative integer`);
  return v;
}
const textOption = (name: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? '';

/** A hand-built MQTT 3.1.1 CONNECT: clean session, keepalive 0, username and password. */
export const connectWith = (clientId: string, username: string, password: string): Buffer => connectPacket(clientId, password, username);

/** Every thread's CPU time of a process, ns (schedstat: user + system, on-CPU time). */
export function processCpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return total;
}

/** The main thread's CPU time of a process, ns. */
export function mainThreadCpuNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

interface Target {
  name: string;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

async function waitForPort(port: number, child: ChildProcess, name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not listen on ${port}`);
}

const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });

/** Mosquitto 2 (from Debian if missing) with a PBKDF2-SHA512 password file holding every device. */
async function startMosquitto(passwords: ReadonlyMap<string, string>): Promise<Target & { version: string }> {
  if (!existsSync(MOSQUITTO)) {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'mosquitto'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  // `mosquitto -h` prints its version and exits with 3
  const version = /mosquitto version (\S+)/.exec(spawnSync(MOSQUITTO, ['-h'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-mosquitto-'));
  const passwordFile = path.join(dir, 'passwd');
  writeFileSync(passwordFile, [...passwords].map(([u, p]) => `${u}:${p}\n`).join(''), { mode: 0o600 });
  execFileSync('mosquitto_passwd', ['-U', passwordFile]); // sha512-pbkdf2, mosquitto_passwd's default
  if (!readFileSync(passwordFile, 'utf8').includes(':$7$')) throw new Error('mosquitto_passwd did not write PBKDF2-SHA512 hashes');
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${passwordFile}`, 'persistence false', 'log_dest none', `user ${process.env.USER ?? 'root'}`, ''].join('\n'),
  );
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
  await waitForPort(port, child, 'mosquitto');
  return {
    name: 'mosquitto',
    version,
    pid: child.pid as number,
    port,
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `latchkey up` as a user starts it (the compiled bin, defaults), its registry holding `devices`. */
export async function startUp(devices: readonly BenchDevice[], extraFlags: readonly string[]): Promise<Target> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-up-'));
  const registry = await openRegistry(path.join(dir, 'latchkey.db'), { clock: Date.now });
  for (let i = 0; i < devices.length; i += 5000) {
    await registry.devices.createMany(
      devices.slice(i, i + 5000).map((d) => ({ id: d.id, key: parsePublicKey(d.publicKeyPem) })),
      'bench',
    );
  }
  await registry.close();
  const child = spawn(process.execPath, [...NODE_FLAGS, BIN, 'up', '--data-dir', dir, '--mqtt-port', '0', '--http-port', '0', ...extraFlags], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /mqtt: mqtt:\/\/[^:]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`latchkey up exited with ${code}`)));
  });
  return {
    name: 'up',
    pid: child.pid as number,
    port,
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startChild(mode: 'bare' | 'floor', devices: readonly BenchDevice[]): Promise<Target> {
  const c = await startBrokerChild(mode, devices, NODE_FLAGS);
  return { name: mode, pid: c.pid, port: c.port, stop: () => c.stop() };
}

/** Each connector runs its packets one after another; resolves with the latencies and the wall time. */
export async function runCycles(port: number, plan: readonly (readonly Buffer[])[]): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    plan.map(async (packets) => {
      for (const p of packets) latencies.push(await cycle(port, p));
    }),
  );
  return { latencies, wallMs: performance.now() - started };
}

interface StormResult {
  /** ms from the first attempt to the last CONNACK */
  allInMs: number;
  p50: number;
  p99: number;
  dropped: number;
  /** why, per cause: `connack <code>`, `closed`, `timeout`, or the socket error's code */
  causes: Record<string, number>;
  connected: number;
}

/**
 * `packets.length` devices reconnect: at most `inflight` between starting a TCP connect and its
 * CONNACK (null: all at once). Sockets stay open until every attempt ended; then each sends DISCONNECT.
 */
async function storm(port: number, packets: readonly Buffer[], inflight: number | null): Promise<StormResult> {
  const open: Socket[] = [];
  const latencies: number[] = [];
  let dropped = 0;
  const causes: Record<string, number> = {};
  let lastConnack = 0;
  const started = performance.now();
  const attempt = (packet: Buffer): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      let done = false;
      const s = connect({ port, host: '127.0.0.1', noDelay: true });
      const finish = (ok: boolean, cause = '') => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!ok) causes[cause] = (causes[cause] ?? 0) + 1;
        if (ok) {
          const now = performance.now();
          latencies.push(now - t0);
          lastConnack = now;
          open.push(s);
        } else {
          dropped++;
          s.destroy();
        }
        resolve();
      };
      const timer = setTimeout(() => finish(false, 'timeout'), STORM_ATTEMPT_TIMEOUT_MS);
      s.once('connect', () => s.write(packet));
      s.once('data', (d: Buffer) => finish(d[0] === 0x20 && d[3] === 0, d[0] === 0x20 ? `connack ${d[3]}` : 'not a CONNACK'));
      s.once('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? 'error'));
      s.once('close', () => finish(false, 'closed'));
    });
  if (inflight === null) {
    await Promise.all(packets.map(attempt));
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(inflight, packets.length) }, async () => {
        while (next < packets.length) await attempt(packets[next++] as Buffer);
      }),
    );
  }
  const result = { allInMs: lastConnack - started, p50: pct(latencies, 50), p99: pct(latencies, 99), dropped, causes, connected: latencies.length };
  await Promise.all(
    open.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.once('close', () => resolve());
          s.once('error', () => resolve());
          s.end(DISCONNECT);
        }),
    ),
  );
  return result;
}

/** ` (ECONNRESET 12, connack 3 4)`: what ended the dropped attempts. */
const dropCauses = (r: StormResult): string => (r.dropped === 0 ? '' : ` (${Object.entries(r.causes).map(([c, n]) => `${c} ${n}`).join(', ')})`);

/** Connector w cycles over the devices w, w+connectors, …; `token(d, k)` is the password of its k-th cycle. */
function plan(devices: readonly BenchDevice[], connectors: number, perConnector: number, packetOf: (d: BenchDevice, k: number) => Buffer): Buffer[][] {
  const owned = Math.floor(devices.length / connectors);
  return Array.from({ length: connectors }, (_, w) => Array.from({ length: perConnector }, (_, k) => packetOf(devices[w + connectors * (k % owned)] as BenchDevice, k)));
}

const mint = async (d: BenchDevice) => (await mintConnectToken({ subject: d.id, privateKey: d.privateKey, ttlSeconds: 3600 })).token;

type Lane = 'mosquitto' | 'bare' | 'floor' | 'upFresh' | 'upReused' | 'up0Fresh';
const LANES: readonly Lane[] = ['mosquitto', 'bare', 'floor', 'upFresh', 'upReused', 'up0Fresh'];
const LABELS: Record<Lane, string> = {
  mosquitto: 'Mosquitto + password_file (PBKDF2-SHA512)',
  bare: 'bare aedes 1.2',
  floor: 'aedes + bare crypto.verify (floor)',
  upFresh: 'latchkey up, fresh tokens',
  upReused: 'latchkey up, already-verified tokens',
  up0Fresh: 'latchkey up --verify-threads 0, fresh tokens',
};

export async function benchConnect(): Promise<BenchResult> {
  const connectors = option('connectors', 50);
  const perConnector = option('per-connector', 20);
  const rounds = option('rounds', 6);
  const stormSize = option('storm', 10_000);
  const inflight = option('inflight', 500);
  const upFlags = textOption('up-flags').split(' ').filter((s) => s.length > 0);
  const cycleDevices = 10 * connectors;
  const devices = makeDevices(Math.max(cycleDevices, stormSize));
  const cycling = devices.slice(0, cycleDevices);
  const passwords = new Map(devices.map((d) => [d.id, `pw-${d.id}-${Math.random().toString(36).slice(2)}`]));
  const mosquittoPacket = (d: BenchDevice) => connectWith(d.id, d.id, passwords.get(d.id) as string);
  // every token minted before any broker starts: minting is outside every measured region
  const fresh = async () => {
    const p = plan(cycling, connectors, perConnector, () => Buffer.alloc(0));
    const owned = Math.floor(cycling.length / connectors);
    return Promise.all(p.map((row, w) => Promise.all(row.map(async (_, k) => {
      const d = cycling[w + connectors * (k % owned)] as BenchDevice;
      return connectWith(d.id, 'x', await mint(d));
    }))));
  };
  const freshPlans = [await fresh(), ...(await Promise.all(Array.from({ length: rounds }, fresh)))];
  const reusedToken = new Map(await Promise.all(devices.map(async (d) => [d.id, connectWith(d.id, 'x', await mint(d))] as const)));
  const reusedPlan = plan(cycling, connectors, perConnector, (d) => reusedToken.get(d.id) as Buffer);
  const mosquittoPlan = plan(cycling, connectors, perConnector, mosquittoPacket);

  const mosquitto = await startMosquitto(passwords);
  const targets: Target[] = [mosquitto];
  const lines: string[] = [];
  const metrics: Record<string, number> = {};
  try {
    targets.push(await startChild('bare', cycling), await startChild('floor', cycling), await startUp(devices, upFlags), await startUp(devices, ['--verify-threads', '0']));
    const [, bare, floor, up, up0] = targets as [Target, Target, Target, Target, Target];
    const laneTarget: Record<Lane, Target> = { mosquitto, bare, floor, upFresh: up, upReused: up, up0Fresh: up0 };
    const laneplan = (lane: Lane, round: number): Buffer[][] =>
      lane === 'mosquitto' ? mosquittoPlan : lane === 'upReused' ? reusedPlan : (freshPlans[round + 1] as Buffer[][]);
    // warm-up: every lane once (the up process: fresh tokens, then each reused token once, so the broker has verified it)
    for (const lane of LANES) await runCycles(laneTarget[lane].port, lane === 'upReused' ? reusedPlan : lane === 'mosquitto' ? mosquittoPlan : (freshPlans[0] as Buffer[][]));
    const stats = new Map(LANES.map((l) => [l, { cpuUs: [] as number[], mainUs: [] as number[], rate: [] as number[], latencies: [] as number[] }]));
    for (let round = 0; round < rounds; round++) {
      const shift = round % LANES.length;
      for (const lane of [...LANES.slice(shift), ...LANES.slice(0, shift)]) {
        const t = laneTarget[lane];
        const before = processCpuNs(t.pid);
        const mainBefore = mainThreadCpuNs(t.pid);
        const { latencies, wallMs } = await runCycles(t.port, laneplan(lane, round));
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        const cpu = (processCpuNs(t.pid) - before) / 1000 / latencies.length;
        const s = stats.get(lane)!;
        s.cpuUs.push(cpu);
        s.mainUs.push((mainThreadCpuNs(t.pid) - mainBefore) / 1000 / latencies.length);
        s.rate.push((latencies.length / wallMs) * 1000);
        s.latencies.push(...latencies);
      }
    }
    lines.push(
      `${connectors} concurrent connectors, ${rounds} rounds × ${connectors * perConnector} CONNECT→CONNACK→DISCONNECT cycles per lane (order rotated each round), ${cycleDevices} devices; broker CPU = the broker process's CPU time (all threads; main thread apart), not wall; Mosquitto ${mosquitto.version}; latchkey up default --verify-threads ${DEFAULT_BROKER_CONFIG.verifyThreads}${upFlags.length > 0 ? `, flags ${upFlags.join(' ')}` : ''}; load average before: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    );
    const med = (l: Lane) => median(stats.get(l)!.cpuUs);
    const rate = (l: Lane) => median(stats.get(l)!.rate);
    for (const l of LANES) {
      const s = stats.get(l)!;
      metrics[`${l}CpuUs`] = med(l);
      metrics[`${l}ConnectsPerSec`] = rate(l);
      metrics[`${l}P99Ms`] = pct(s.latencies, 99);
      metrics[`${l}MainThreadCpuUs`] = median(s.mainUs);
      lines.push(
        `${LABELS[l].padEnd(46)} ${med(l).toFixed(0).padStart(4)} µs CPU/connect (main thread ${median(s.mainUs).toFixed(0)}; rounds ${s.cpuUs.map((x) => x.toFixed(0)).join(' ')}), ${rate(l).toFixed(0)} connects/s, p99 ${pct(s.latencies, 99).toFixed(1)} ms`,
      );
    }
    /** the median over rounds of a figure computed within each round, and its range */
    const perRound = (key: string, f: (at: (l: Lane) => number) => number): string => {
      const xs = Array.from({ length: rounds }, (_, i) => f((l) => (stats.get(l)!.cpuUs[i] as number)));
      metrics[key] = median(xs);
      return `${median(xs).toFixed(2)} (rounds ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
    };
    const perRoundRate = (key: string, f: (at: (l: Lane) => number) => number): string => {
      const xs = Array.from({ length: rounds }, (_, i) => f((l) => (stats.get(l)!.rate[i] as number)));
      metrics[key] = median(xs);
      return `${median(xs).toFixed(2)} (rounds ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
    };
    const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
    const reusedOverBare = perRound('upReusedOverBare', (at) => at('upReused') / at('bare'));
    lines.push(`reused tokens: latchkey up / bare aedes CPU per connect: ${reusedOverBare}× — target ≤ 1.2×: ${verdict(metrics['upReusedOverBare']! <= 1.2)}`);
    const freshOverFloor = perRound('upFreshMinusFloorUs', (at) => at('upFresh') - at('floor'));
    lines.push(`fresh tokens: latchkey up − floor CPU per connect: ${freshOverFloor} µs — target ≤ +40 µs: ${verdict(metrics['upFreshMinusFloorUs']! <= 40)}`);
    const rateRatio = perRoundRate('upFreshRateOverMosquitto', (at) => at('upFresh') / at('mosquitto'));
    lines.push(`fresh tokens: latchkey up / Mosquitto connects/s: ${rateRatio}× — target ≥ 0.5×: ${verdict(metrics['upFreshRateOverMosquitto']! >= 0.5)}`);
    const fresh0OverFloor = perRound('up0FreshMinusFloorUs', (at) => at('up0Fresh') - at('floor'));
    const rate0Ratio = perRoundRate('up0FreshRateOverMosquitto', (at) => at('up0Fresh') / at('mosquitto'));
    const threadsGain = perRoundRate('upFreshRateOverUp0', (at) => at('upFresh') / at('up0Fresh'));
    lines.push(`fresh tokens, --verify-threads 0: latchkey up − floor CPU per connect: ${fresh0OverFloor} µs (target ≤ +40 µs: ${verdict(metrics['up0FreshMinusFloorUs']! <= 40)}); / Mosquitto connects/s: ${rate0Ratio}× (target ≥ 0.5×: ${verdict(metrics['up0FreshRateOverMosquitto']! >= 0.5)})`);
    lines.push(`fresh tokens: connects/s with the default verify threads / with 0: ${threadsGain}×`);
    perRound('floorOverBare', (at) => at('floor') / at('bare'));
    perRound('mosquittoOverBare', (at) => at('mosquitto') / at('bare'));
    lines.push(`floor / bare: ${metrics['floorOverBare']!.toFixed(2)}×, Mosquitto / bare aedes CPU per connect: ${metrics['mosquittoOverBare']!.toFixed(2)}×`);

    if (stormSize > 0) {
      await stormRounds(stormSize, inflight, devices.slice(0, stormSize), { up, up0, mosquitto }, reusedToken, mosquittoPacket, lines, metrics);
    }
    lines.push(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
  return { name: 'connect', lines, metrics };
}

async function stormRounds(
  size: number,
  inflight: number,
  devices: readonly BenchDevice[],
  brokers: { up: Target; up0: Target; mosquitto: Target },
  reusedToken: ReadonlyMap<string, Buffer>,
  mosquittoPacket: (d: BenchDevice) => Buffer,
  lines: string[],
  metrics: Record<string, number>,
): Promise<void> {
  const packets = { up: devices.map((d) => reusedToken.get(d.id) as Buffer), mosquitto: devices.map(mosquittoPacket) };
  // every device connects once before (paced): latchkey has verified every token
  for (const b of ['up', 'mosquitto'] as const) {
    const warm = await storm(brokers[b].port, packets[b], inflight);
    if (warm.dropped > 0) lines.push(`(warm-up of ${b}: ${warm.dropped} dropped)`);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
  }
  lines.push(`reconnect storm: ${size} registered devices that connected once before, every socket kept open until all are in; a drop = no CONNACK 0 within ${STORM_ATTEMPT_TIMEOUT_MS / 1000} s (reset, closed or timed out)`);
  const order: Array<['paced' | 'unpaced', 'up' | 'mosquitto']> = [
    ['paced', 'up'],
    ['paced', 'mosquitto'],
    ['unpaced', 'mosquitto'],
    ['unpaced', 'up'],
  ];
  const got: Record<string, StormResult> = {};
  for (const [kind, b] of order) {
    const cpuBefore = processCpuNs(brokers[b].pid);
    const r = await storm(brokers[b].port, packets[b], kind === 'paced' ? inflight : null);
    const cpuMs = (processCpuNs(brokers[b].pid) - cpuBefore) / 1e6;
    got[`${kind}-${b}`] = r;
    Object.assign(metrics, {
      [`storm_${kind}_${b}_allInMs`]: r.allInMs,
      [`storm_${kind}_${b}_p99Ms`]: r.p99,
      [`storm_${kind}_${b}_dropped`]: r.dropped,
      [`storm_${kind}_${b}_cpuMs`]: cpuMs,
    });
    const label = `${kind === 'paced' ? `paced (${inflight} mid-connect)` : 'unpaced (all at once)'}, ${b === 'up' ? 'latchkey up' : 'Mosquitto + password_file'}`;
    lines.push(
      `  ${label.padEnd(54)} all in ${(r.allInMs / 1000).toFixed(2)} s, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms, dropped ${r.dropped}${dropCauses(r)}, connected ${r.connected}, broker CPU ${(cpuMs / 1000).toFixed(2)} s`,
    );
    await new Promise((r2) => setTimeout(r2, SETTLE_MS));
  }
  const ratio = got['paced-up']!.allInMs / got['paced-mosquitto']!.allInMs;
  metrics['stormPacedTimeRatio'] = ratio;
  const pacedOk = got['paced-up']!.dropped === 0 && ratio <= 1.5;
  const unpacedOk = got['unpaced-up']!.dropped === 0;
  lines.push(`storm, paced: latchkey/Mosquitto time ${ratio.toFixed(2)}×, latchkey dropped ${got['paced-up']!.dropped} — target none dropped, ≤ 1.5×: ${pacedOk ? 'MET' : 'NOT MET'}`);
  lines.push(`storm, unpaced: latchkey dropped ${got['unpaced-up']!.dropped} — target none dropped: ${unpacedOk ? 'MET' : 'NOT MET'}`);

  // every device with a token neither latchkey process has seen: each one a signature check
  const freshTokens = await Promise.all(devices.map(async (d) => connectWith(d.id, 'x', await mint(d))));
  lines.push(`fresh-token storm, paced (${inflight} mid-connect): the same ${size} devices, each with a token the broker never saw`);
  const fresh: Record<string, StormResult> = {};
  for (const b of ['up', 'up0'] as const) {
    const cpuBefore = processCpuNs(brokers[b].pid);
    const r = await storm(brokers[b].port, freshTokens, inflight);
    const cpuMs = (processCpuNs(brokers[b].pid) - cpuBefore) / 1e6;
    fresh[b] = r;
    Object.assign(metrics, { [`storm_fresh_${b}_allInMs`]: r.allInMs, [`storm_fresh_${b}_p99Ms`]: r.p99, [`storm_fresh_${b}_dropped`]: r.dropped, [`storm_fresh_${b}_cpuMs`]: cpuMs });
    const label = b === 'up' ? 'latchkey up (default verify threads)' : 'latchkey up --verify-threads 0';
    lines.push(
      `  ${label.padEnd(54)} all in ${(r.allInMs / 1000).toFixed(2)} s, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms, dropped ${r.dropped}${dropCauses(r)}, connected ${r.connected}, broker CPU ${(cpuMs / 1000).toFixed(2)} s`,
    );
    await new Promise((r2) => setTimeout(r2, SETTLE_MS));
  }
  lines.push(`fresh-token storm, paced: latchkey (default threads) / Mosquitto time ${(fresh['up']!.allInMs / got['paced-mosquitto']!.allInMs).toFixed(2)}×, --verify-threads 0 / Mosquitto ${(fresh['up0']!.allInMs / got['paced-mosquitto']!.allInMs).toFixed(2)}×`);
}
