/** The broker's small parts, without sockets: packet framing, throttle, jti cache, step runner, config. */
import { describe, expect, it } from 'vitest';
import { isProtocolError } from '@latchkey/device-sdk/protocol';
import { varint } from './helpers/raw-mqtt.ts';
import { PacketSizeGuard } from '../../broker/src/listeners/packet-size-guard.ts';
import { FailureThrottle } from '../../broker/src/auth/failure-throttle.ts';
import { JtiCache } from '../../broker/src/auth/jti-cache.ts';
import { runSteps } from '../../broker/src/auth/run-steps.ts';
import { resolveBrokerConfig, DEFAULT_BROKER_CONFIG } from '../../broker/src/config.ts';

describe('PacketSizeGuard', () => {
  const publish = (bodyLength: number) => Buffer.concat([Buffer.from([0x30, ...varint(bodyLength)]), Buffer.alloc(bodyLength)]);

  it('passes packets up to the limit, fixed header included, across any chunking', () => {
    const stream = Buffer.concat([publish(0), publish(1021), publish(10), Buffer.from([0xc0, 0x00])]); // 1021 body = 1024 total
    for (const size of [1, 2, 3, 7, 1000, stream.length]) {
      const g = new PacketSizeGuard(1024);
      for (let i = 0; i < stream.length; i += size) expect(g.feed(stream.subarray(i, i + size))).toBe(true);
    }
  });

  it('refuses a packet one byte over, as soon as its length is known', () => {
    const g = new PacketSizeGuard(1024);
    expect(g.feed(Buffer.from([0x30, 0xfe]))).toBe(true); // length incomplete
    expect(g.feed(Buffer.from([0x07]))).toBe(false); // 1022 body + 3 = 1025
  });

  it('refuses a 10 MB claim from its header alone, and a 5-byte remaining length', () => {
    expect(new PacketSizeGuard(262_144).feed(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x05]))).toBe(false);
    expect(new PacketSizeGuard(268_435_460).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff]))).toBe(false);
    expect(new PacketSizeGuard(262_144).feed(Buffer.from([0x30, 0x80, 0x80, 0x10]))).toBe(false); // 256 KiB body: over before the last byte matters
  });

  it('rejects misuse', () => {
    expect(() => new PacketSizeGuard(0)).toThrow(TypeError);
  });
});

describe('FailureThrottle', () => {
  it('counts failures per address in a fixed window that throttled attempts do not extend', () => {
    const t = new FailureThrottle({ limit: 2, windowMs: 60_000, capacity: 10 });
    t.recordFailure('a', 0);
    expect(t.check('a', 1)).toBe('open');
    t.recordFailure('a', 2);
    expect(t.check('a', 3)).toBe('throttled_first');
    expect(t.check('a', 4)).toBe('throttled');
    expect(t.check('b', 4)).toBe('open');
    expect(t.check('a', 59_999)).toBe('throttled');
    expect(t.check('a', 60_000)).toBe('open');
  });

  it('is off at limit 0 and bounded in memory', () => {
    const off = new FailureThrottle({ limit: 0, windowMs: 60_000, capacity: 10 });
    for (let i = 0; i < 100; i++) off.recordFailure('a', i);
    expect(off.check('a', 100)).toBe('open');
    expect(off.size).toBe(0);
    const t = new FailureThrottle({ limit: 1, windowMs: 60_000, capacity: 100 });
    for (let i = 0; i < 10_000; i++) t.recordFailure(`10.0.${i >> 8}.${i & 255}`, i);
    expect(t.size).toBeLessThanOrEqual(100);
    expect(t.check('10.0.39.15', 10_000)).toBe('throttled_first'); // the newest are kept
    t.prune(200_000);
    expect(t.size).toBe(0);
  });
});

describe('JtiCache', () => {
  it('accepts a jti once per principal while it is live', () => {
    const j = new JtiCache({ capacity: 10, toleranceMs: 1000 });
    expect(j.use('d1', 'x', 5000, 0)).toBe(true);
    expect(j.use('d1', 'x', 5000, 100)).toBe(false);
    expect(j.use('d2', 'x', 5000, 100)).toBe(true);
    expect(j.use('d1', 'x', 5000, 6000)).toBe(true); // past exp + tolerance the token itself is refused
  });

  it('fails closed (internal_error) when full of live entries, and frees expired ones', () => {
    const j = new JtiCache({ capacity: 2, toleranceMs: 0 });
    j.use('d', 'a', 1000, 0);
    j.use('d', 'b', 1000, 0);
    let code: unknown;
    try {
      j.use('d', 'c', 1000, 10);
    } catch (e) {
      code = isProtocolError(e) ? e.code : e;
    }
    expect(code).toBe('internal_error');
    expect(j.use('d', 'c', 5000, 1000)).toBe(true);
  });
});

describe('runSteps', () => {
  it('runs synchronous steps synchronously and calls back once with null', () => {
    const calls: unknown[] = [];
    const order: string[] = [];
    runSteps([() => void order.push('a'), () => void order.push('b')], {}, 1000, (e) => calls.push(e));
    expect(order).toEqual(['a', 'b']);
    expect(calls).toEqual([null]);
  });

  it('stops at the first throwing step', () => {
    const calls: unknown[] = [];
    const boom = new Error('x');
    let reached = false;
    runSteps([() => { throw boom; }, () => { reached = true; }], {}, 1000, (e) => calls.push(e));
    expect(calls).toEqual([boom]);
    expect(reached).toBe(false);
  });

  it('times out an asynchronous step that never settles (auth_timeout), exactly once', async () => {
    const calls: unknown[] = [];
    runSteps([() => new Promise<void>(() => undefined)], {}, 30, (e) => calls.push(isProtocolError(e) ? e.code : e));
    await new Promise((r) => setTimeout(r, 80));
    expect(calls).toEqual(['auth_timeout']);
  });

  it('continues after an asynchronous step and reports a rejection', async () => {
    const calls: unknown[] = [];
    runSteps([async () => undefined, async () => Promise.reject(new Error('late'))], {}, 1000, (e) => calls.push((e as Error).message));
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toEqual(['late']);
  });

  it('a callback that throws does not re-enter the flow', () => {
    let n = 0;
    expect(() => runSteps([() => undefined], {}, 1000, () => { n++; throw new Error('caller bug'); })).not.toThrow();
    expect(n).toBe(1);
  });
});

describe('resolveBrokerConfig', () => {
  it('applies defaults and freezes', () => {
    const c = resolveBrokerConfig({ mqttPort: 0 });
    expect(c.maxPacketSize).toBe(262_144);
    expect(c.connectTimeout).toBe(10);
    expect(c.authFailureLimit).toBe(60);
    expect(c.host).toBe('127.0.0.1');
    expect(Object.isFrozen(c)).toBe(true);
    expect(DEFAULT_BROKER_CONFIG.maxQueuedMessages).toBe(1000);
  });

  it('names every bad setting in one TypeError', () => {
    let message = '';
    try {
      resolveBrokerConfig({ mqttPort: 70_000, connectTimeout: 0, maxPacketSize: 10, mqttsPort: 8883, bogus: 1 } as never);
    } catch (e) {
      expect(e).toBeInstanceOf(TypeError);
      message = (e as Error).message;
    }
    for (const name of ['mqttPort', 'connectTimeout', 'maxPacketSize', 'mqttsPort', 'bogus']) expect(message).toContain(name);
  });
});
