/**
 * docs/operations.md §Behind a proxy (issue 16): behind a proxy every WebSocket client arrives from
 * the proxy's address, so per-address throttling would lock them all out together. With
 * trustProxy, the broker takes the client's address from X-Forwarded-For, but only when the
 * connection comes from a trusted proxy. (PROXY protocol on the TCP listeners is left to the
 * cluster work.)
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveBrokerConfig } from '../../broker/src/config.ts';
import { clientAddress, trustedProxies } from '../../broker/src/listeners/forwarded-for.ts';
import { startBroker, type BrokerFixture } from './helpers/broker-fixture.ts';

describe('trustedProxies and clientAddress', () => {
  it('match addresses, ranges and named ranges, IPv4-mapped IPv6 included', () => {
    const t = trustedProxies(['10.0.0.0/8', '192.0.2.7', 'fd00::/8', 'loopback'])!;
    expect(['10.1.2.3', '192.0.2.7', 'fd12::1', '127.0.0.1', '::1', '::ffff:10.0.0.1'].every(t)).toBe(true);
    expect(['11.0.0.1', '192.0.2.8', 'fe80::1', 'junk', ''].some(t)).toBe(false);
    expect(trustedProxies([])).toBeNull();
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'everyone', '10.0.0.0/8/8', '10.0.0.0/', '10.0.0.0/x']) {
      expect(() => trustedProxies([bad]), bad).toThrow(TypeError);
    }
  });

  it('believe X-Forwarded-For only from a trusted peer, and only what trusted hops appended', () => {
    const t = trustedProxies(['10.0.0.0/8']);
    expect(clientAddress('10.0.0.1', '203.0.113.5', t)).toBe('203.0.113.5');
    expect(clientAddress('10.0.0.1', '198.51.100.1, 203.0.113.5', t)).toBe('203.0.113.5'); // a forged first hop is ignored
    expect(clientAddress('10.0.0.1', '203.0.113.5, 10.0.0.9', t)).toBe('203.0.113.5'); // through two trusted proxies
    expect(clientAddress('203.0.113.9', '198.51.100.1', t)).toBe('203.0.113.9'); // untrusted peer
    expect(clientAddress('10.0.0.1', undefined, t)).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', 'garbage, 203.0.113.5', t)).toBe('203.0.113.5');
    expect(clientAddress('10.0.0.1', '203.0.113.5, garbage', t)).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', '203.0.113.5', null)).toBe('10.0.0.1');
  });

  it('is validated with the broker config', () => {
    expect(resolveBrokerConfig({ trustProxy: ['loopback'] }).trustProxy).toEqual(['loopback']);
    expect(() => resolveBrokerConfig({ trustProxy: ['10.0.0.0/99'] })).toThrow(/trustProxy/);
  });
});

let fx: BrokerFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

/** A WebSocket CONNECT with a junk token as if forwarded for `forwardedFor`; resolves with the CONNACK code. */
function wsConnack(port: number, forwardedFor: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`ws://127.0.0.1:${port}`, {
      clientId: 'thermo-1',
      username: 'x',
      password: 'x.y.z',
      reconnectPeriod: 0,
      protocolVersion: 4,
      wsOptions: { headers: { 'x-forwarded-for': forwardedFor } },
    });
    c.on('connect', () => c.end(true, () => resolve(0)));
    c.on('error', (e: Error & { code?: number }) => {
      c.end(true);
      if (typeof e.code === 'number') resolve(e.code);
      else reject(e);
    });
  });
}

describe('MQTT over WebSocket behind a proxy', () => {
  it('throttles each forwarded client on its own when the proxy is trusted', async () => {
    fx = await startBroker({ wsPort: 0, authFailureLimit: 2, trustProxy: ['127.0.0.1'] });
    const port = fx.broker.addresses.ws!.port;
    expect([await wsConnack(port, '203.0.113.1'), await wsConnack(port, '203.0.113.1')]).toEqual([4, 4]);
    expect(await wsConnack(port, '203.0.113.1')).toBe(5); // throttled
    expect(await wsConnack(port, '203.0.113.2')).toBe(4); // another client behind the same proxy is not
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    fx = await startBroker({ wsPort: 0, authFailureLimit: 2 });
    const port = fx.broker.addresses.ws!.port;
    expect([await wsConnack(port, '203.0.113.1'), await wsConnack(port, '203.0.113.1')]).toEqual([4, 4]);
    expect(await wsConnack(port, '203.0.113.2')).toBe(5); // the header changed nothing: same peer, throttled
  });
});
