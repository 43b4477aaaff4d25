/**
 * The PROXY protocol on the MQTT TCP and TLS listeners (docs/operations.md §Behind a proxy): the
 * decoder on its own, then real connections through a trusted and an untrusted peer, and a real
 * HAProxy in `mode tcp` with `send-proxy-v2` when it is installed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseProxyHeader } from '../../broker/src/listeners/proxy-protocol.ts';
import { OPENSSL } from '../helpers/certs.ts';
import { freePort } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';
import { startBroker, waitFor, type BrokerFixture } from './helpers/broker-fixture.ts';
import { connectPacket, rawConnect, varint } from './helpers/raw-mqtt.ts';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A PROXY v2 header, built byte by byte from the specification. */
function v2(o: { command?: 'proxy' | 'local'; family?: 'inet' | 'inet6'; source?: number[]; tlv?: Buffer } = {}): Buffer {
  const inet6 = o.family === 'inet6';
  const src = Buffer.from(o.source ?? (inet6 ? [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 7] : [198, 51, 100, 23]));
  const dst = Buffer.alloc(inet6 ? 16 : 4, 1);
  const ports = Buffer.from([0x9c, 0x40, 0x07, 0x5b]);
  const body = Buffer.concat([src, dst, ports, o.tlv ?? Buffer.alloc(0)]);
  const head = Buffer.from([o.command === 'local' ? 0x20 : 0x21, inet6 ? 0x21 : 0x11, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([SIGNATURE, head, body]);
}

describe('parseProxyHeader', () => {
  it('reads v1 (TCP4, TCP6, UNKNOWN) and v2 (IPv4, IPv6, LOCAL, with TLVs), and tells partial, absent and malformed headers apart', () => {
    const v1 = Buffer.from('PROXY TCP4 203.0.113.9 10.0.0.1 51234 1883\r\n');
    expect(parseProxyHeader(Buffer.concat([v1, Buffer.from([0x10, 0])]))).toEqual({ kind: 'header', version: 1, length: v1.length, source: '203.0.113.9' });
    expect(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::9 2001:db8::1 51234 1883\r\n'))).toMatchObject({ source: '2001:db8::9' });
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toMatchObject({ kind: 'header', source: null });
    expect(parseProxyHeader(v2())).toEqual({ kind: 'header', version: 2, length: 28, source: '198.51.100.23' });
    expect(parseProxyHeader(v2({ family: 'inet6' }))).toMatchObject({ source: '2001:db8::7' });
    expect(parseProxyHeader(v2({ command: 'local' }))).toMatchObject({ kind: 'header', source: null });
    expect(parseProxyHeader(v2({ tlv: Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]) }))).toMatchObject({ length: 33, source: '198.51.100.23' });
    for (const cut of [1, 6, 13, 20]) expect(parseProxyHeader(v2().subarray(0, cut))).toEqual({ kind: 'partial' });
    expect(parseProxyHeader(v1.subarray(0, 20))).toEqual({ kind: 'partial' });
    expect(parseProxyHeader(Buffer.from([0x10, 0x2a]))).toEqual({ kind: 'none' });
    for (const bad of [
      'PROXY TCP4 203.0.113.9 10.0.0.1 51234\r\n',
      'PROXY TCP4 2001:db8::9 10.0.0.1 1 2\r\n',
      'PROXY TCP4 203.0.113.9 10.0.0.1 70000 1883\r\n',
      'PROXY UDP4 203.0.113.9 10.0.0.1 1 2\r\n',
      `PROXY TCP4 ${'1'.repeat(110)}`,
    ]) {
      expect(parseProxyHeader(Buffer.from(bad)), bad).toMatchObject({ kind: 'invalid' });
    }
    const dgram = v2();
    dgram[13] = 0x12;
    expect(parseProxyHeader(dgram)).toMatchObject({ kind: 'invalid' });
    const huge = v2();
    huge.writeUInt16BE(4000, 14);
    expect(parseProxyHeader(huge)).toMatchObject({ kind: 'invalid' });
  });
});

let fx: BrokerFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

/** The address the broker logged for the last refused CONNECT. */
const refusedFrom = (f: BrokerFixture) => [...f.log.entries].reverse().find((e) => e.msg === 'connect refused')?.obj as { remoteAddress?: string } | undefined;

/** Writes `chunks` (each in its own write) and resolves with the CONNACK code, or 'closed'. */
async function send(port: number, chunks: Buffer[]): Promise<number | 'closed'> {
  const conn = await rawConnect(port);
  for (const c of chunks) {
    conn.send(c);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  try {
    return await conn.connack(3000);
  } finally {
    conn.socket.destroy();
  }
}

describe('PROXY protocol on the MQTT listener', () => {
  it('from a --trust-proxy peer, a v1 or v2 header names the client (also split over two writes); without a header the peer is the client', async () => {
    fx = await startBroker({ trustProxy: ['loopback'] });
    const dev = await fx.device('thermo-1');
    const refused = connectPacket({ clientId: 'thermo-1', username: 'x', password: 'bad' });
    expect(await send(fx.port, [Buffer.from('PROXY TCP4 203.0.113.9 10.0.0.1 51234 1883\r\n'), refused])).toBe(4);
    expect(refusedFrom(fx)?.remoteAddress).toBe('203.0.113.9');
    const header = v2();
    expect(await send(fx.port, [header.subarray(0, 9), Buffer.concat([header.subarray(9), refused])])).toBe(4);
    expect(refusedFrom(fx)?.remoteAddress).toBe('198.51.100.23');
    expect(await send(fx.port, [refused])).toBe(4);
    expect(refusedFrom(fx)?.remoteAddress).toBe('127.0.0.1');
    expect(await send(fx.port, [Buffer.concat([v2({ family: 'inet6' }), connectPacket({ clientId: 'thermo-1', username: 'x', password: await dev.token() })])])).toBe(0);
  });

  it('from any other peer a header is not read: it is bytes of no valid CONNECT, and the connection is closed without a CONNACK', async () => {
    fx = await startBroker({ trustProxy: ['10.0.0.0/8'], connectTimeout: 0.5 });
    expect(await send(fx.port, [Buffer.from('PROXY TCP4 203.0.113.9 10.0.0.1 51234 1883\r\n'), connectPacket({ clientId: 'thermo-1', username: 'x', password: 'bad' })])).toBe('closed');
  });

  it('bytes after the header still pass the packet-size guard; a malformed header and a silent trusted peer are closed', async () => {
    fx = await startBroker({ trustProxy: ['loopback'], connectTimeout: 0.5 });
    const f = fx;
    // a PUBLISH claiming 1 MiB right behind the header, in the same write
    const oversized = Buffer.from([0x30, ...varint(1 << 20)]);
    expect(await send(f.port, [Buffer.concat([v2(), oversized])])).toBe('closed');
    await waitFor(async () => (await f.metric('latchkey_broker_connections_closed_total', { reason: 'packet_too_large' })) === 1);
    expect(await send(f.port, [Buffer.from('PROXY TCP4 nonsense\r\n')])).toBe('closed');
    const silent = await rawConnect(f.port);
    const started = performance.now();
    await silent.closed;
    expect(performance.now() - started).toBeLessThan(2000);
    await waitFor(async () => (await f.metric('latchkey_broker_connections_closed_total', { reason: 'proxy_header_invalid' })) === 2);
  });

  it('on the TLS listener the header comes before the handshake', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-proxy-tls-'));
    try {
      const key = path.join(dir, 'server.key');
      const crt = path.join(dir, 'server.crt');
      execFileSync(OPENSSL, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
      fx = await startBroker({ trustProxy: ['loopback'], mqttsPort: 0, tlsCert: readFileSync(crt, 'utf8'), tlsKey: key });
      const port = fx.broker.addresses.mqtts?.port as number;
      const raw = netConnect(port, '127.0.0.1');
      await new Promise((resolve) => raw.once('connect', resolve));
      raw.write(v2({ source: [192, 0, 2, 77] }));
      const secure = tlsConnect({ socket: raw, rejectUnauthorized: false });
      await new Promise((resolve) => secure.once('secureConnect', resolve));
      const ack = new Promise<Buffer>((resolve) => secure.once('data', resolve));
      secure.write(connectPacket({ clientId: 'thermo-9', username: 'x', password: 'bad' }));
      expect((await ack)[3]).toBe(4);
      secure.destroy();
      expect(refusedFrom(fx)?.remoteAddress).toBe('192.0.2.77');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const haproxy = requireTools(['haproxy'], 'apt-get install haproxy');
describe.skipIf(haproxy.skip)(`behind HAProxy (mode tcp, send-proxy-v2)${haproxy.note}`, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-haproxy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the broker sees the client\'s address, not HAProxy\'s', async () => {
    haproxy.assertPresent();
    fx = await startBroker({ trustProxy: ['127.0.0.1'] });
    const front = await freePort();
    writeFileSync(
      path.join(dir, 'haproxy.cfg'),
      ['global', '  log stderr format raw local0 emerg', 'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s',
        'frontend mqtt', `  bind 127.0.0.1:${front}`, '  default_backend brokers', 'backend brokers', `  server b1 127.0.0.1:${fx.port} send-proxy-v2`, ''].join('\n'),
    );
    const proc = spawn('haproxy', ['-f', path.join(dir, 'haproxy.cfg'), '-db'], { stdio: 'ignore' });
    try {
      // the client connects from 127.0.0.3; HAProxy connects to the broker from 127.0.0.1
      let code: number | 'closed' = 'closed';
      await waitFor(async () => {
        const conn = await rawConnect(front, '127.0.0.3').catch(() => null);
        if (conn === null) return false;
        conn.send(connectPacket({ clientId: 'thermo-1', username: 'x', password: 'bad' }));
        code = await conn.connack(2000);
        conn.socket.destroy();
        return code !== 'closed';
      }, 10_000);
      expect(code).toBe(4);
      expect(refusedFrom(fx)?.remoteAddress).toBe('127.0.0.3');
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
