/**
 * What the broker benchmarks share: fresh P-256 devices, hand-built CONNECT packets with valid
 * tokens, and the broker children of bench/broker-child.ts (one broker per process, measured from
 * outside).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mintConnectToken } from '../device-sdk/src/token/mint-token.ts';

const CHILD = fileURLToPath(new URL('./broker-child.ts', import.meta.url));

export interface BenchDevice {
  id: string;
  privateKey: KeyObject;
  publicKeyPem: string;
}

/** Fresh P-256 devices `bench-00000`… (ids fit aedes's default 23-character limit for the bare broker). */
export function makeDevices(n: number): BenchDevice[] {
  return Array.from({ length: n }, (_, i) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { id: `bench-${String(i).padStart(5, '0')}`, privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
  });
}

/** A hand-built MQTT 3.1.1 CONNECT (clean session, keepalive 0, username `x`, password = token). */
export function connectPacket(clientId: string, password: string): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length);
    return Buffer.concat([len, b]);
  };
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 0]), str(clientId), str('x'), str(password)]);
  return mqttPacket(0x10, body);
}

/** An MQTT packet: the fixed header's first byte, the remaining length (MQTT 3.1.1 §2.2.3), the body. */
export function mqttPacket(first: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}

/** CONNECT packets with valid tokens for every device. */
export async function connectPackets(devices: readonly BenchDevice[]): Promise<Buffer[]> {
  return Promise.all(
    devices.map(async (d) => connectPacket(d.id, (await mintConnectToken({ subject: d.id, privateKey: d.privateKey, ttlSeconds: 3600 })).token)),
  );
}

/** bench/broker-child.ts's brokers, in the order of the first round and of the report. */
export const BROKER_MODES = ['bare', 'floor', 'jose', 'auth'] as const;
export type BrokerMode = (typeof BROKER_MODES)[number];

export interface BrokerChild {
  mode: BrokerMode;
  port: number;
  request<T>(cmd: 'cpu' | 'mem' | 'metrics'): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Starts a broker child (`auth` over a registry holding `devices`, `bare` aedes, or a `jose`/`floor`
 * baseline) and waits for its port; `nodeFlags` are added to the child's Node options, and
 * `brokerConfig` overrides the `auth` broker's defaults.
 */
export async function startBrokerChild(
  mode: BrokerMode,
  devices: readonly BenchDevice[],
  nodeFlags: readonly string[] = [],
  brokerConfig?: Record<string, unknown>,
  /** service accounts the `auth` broker registers too (id `svc:<name>`) */
  services: ReadonlyArray<{ name: string; publicKeyPem: string; acl: { publish: string[]; subscribe: string[] } }> = [],
): Promise<BrokerChild> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-devices-'));
  const file = path.join(dir, 'devices.json');
  writeFileSync(file, JSON.stringify(devices.map((d) => ({ id: d.id, publicKeyPem: d.publicKeyPem }))));
  const args = [mode, file, JSON.stringify(brokerConfig ?? {}), JSON.stringify(services)];
  const child: ChildProcess = fork(CHILD, args, { execArgv: ['--conditions=@latchkey/source', '--import', 'tsx', '--expose-gc', ...nodeFlags], stdio: 'inherit' });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`broker child (${mode}) exited with ${code}`)));
  });
  rmSync(dir, { recursive: true, force: true });
  return {
    mode,
    port,
    request: <T>(cmd: 'cpu' | 'mem' | 'metrics') =>
      new Promise<T>((resolve) => {
        child.once('message', (m: Record<string, T>) => resolve(m[cmd] as T));
        child.send({ cmd });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send({ cmd: 'stop' });
      }),
  };
}
