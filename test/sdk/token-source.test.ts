import { describe, expect, it } from 'vitest';
import { backoffDelay, resolveBackoff } from '../../device-sdk/src/session/backoff.ts';
import { REFRESH_WINDOW, refreshDueAt, refreshShare, TokenSource } from '../../device-sdk/src/token/token-source.ts';
import { mintConnectToken, generateDeviceKeyPair } from '@latchkey/device-sdk';

function fakeClock(start = 1_700_000_000_000) {
  const c = () => c.now;
  c.now = start;
  return c;
}

describe('TokenSource (always a ready next token)', () => {
  const { privateKey } = generateDeviceKeyPair();

  function source(clock: ReturnType<typeof fakeClock>, ttlSeconds = 100) {
    let mints = 0;
    const src = new TokenSource({
      clock,
      ttlSeconds,
      mint: async (clockOffsetMs) => {
        mints++;
        return mintConnectToken({ subject: 'thermo-1', privateKey, ttlSeconds, clock, clockOffsetMs, jti: true });
      },
    });
    return { src, mints: () => mints };
  }

  it('ready() mints once; take() hands it over synchronously and pre-mints the next', async () => {
    const clock = fakeClock();
    const { src, mints } = source(clock);
    const first = await src.ready();
    expect(await src.ready()).toBe(first);
    expect(mints()).toBe(1);
    expect(src.take()).toBe(first);
    expect(mints()).toBe(2); // the next one is being minted already
    const next = await src.ready();
    expect(next.token).not.toBe(first.token);
    expect(mints()).toBe(2);
  });

  it('a held token older than 10% of its lifetime is re-minted before use', async () => {
    const clock = fakeClock();
    const { src, mints } = source(clock, 100);
    const first = await src.ready();
    clock.now += 10_000;
    expect(await src.ready()).toBe(first);
    clock.now += 1;
    const fresh = await src.ready();
    expect(fresh).not.toBe(first);
    expect(fresh.iat).toBe(Math.floor(clock.now / 1000));
    expect(mints()).toBe(2);
  });

  it('a new clock offset drops tokens minted with the old one', async () => {
    const clock = fakeClock();
    const { src } = source(clock);
    const before = await src.ready();
    src.setClockOffset(7_200_000);
    const after = await src.ready();
    expect(after.iat - before.iat).toBe(7_200);
    expect(src.clockOffsetMs).toBe(7_200_000);
    expect(() => src.setClockOffset(Number.NaN)).toThrow(TypeError);
  });

  it('a failing mint rejects ready() and is retried by the next call', async () => {
    const clock = fakeClock();
    let fail = true;
    const src = new TokenSource({
      clock,
      ttlSeconds: 60,
      mint: async () => {
        if (fail) throw new Error('secure element busy');
        return { token: 't', iat: 1, exp: 61 };
      },
    });
    await expect(src.ready()).rejects.toThrow();
    expect(src.take()).toBeNull(); // nothing held; the background pre-mint fails quietly
    await new Promise((r) => setImmediate(r));
    fail = false;
    expect((await src.ready()).token).toBe('t');
  });
});

describe('refresh timing', () => {
  it('each client refreshes at its own random point in [80%, 90%) of the lifetime, always before exp', () => {
    expect(refreshShare(() => 0)).toBe(REFRESH_WINDOW.from);
    expect(refreshShare(() => 0.999999)).toBeLessThan(REFRESH_WINDOW.to);
    const shares = Array.from({ length: 200 }, () => refreshShare(Math.random));
    expect(new Set(shares).size).toBeGreaterThan(150); // a fleet does not refresh in lock-step
    const t = { token: 't', iat: 1000, exp: 4600, mintedAt: 1_000_000 };
    expect(refreshDueAt(t, 0.8)).toBe(1_000_000 + 2_880_000);
    for (const s of shares) expect(refreshDueAt(t, s)).toBeLessThan(t.mintedAt + (t.exp - t.iat) * 1000);
  });
});

describe('backoff with full jitter', () => {
  it('grows exponentially to the cap, each delay uniformly below its ceiling', () => {
    const o = resolveBackoff({ initialMs: 100, maxMs: 1000 });
    expect([0, 1, 2, 3, 4, 40].map((a) => backoffDelay(a, o, () => 0.999999))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay(5, o, () => 0)).toBe(0);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, o);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(400);
    }
  });

  it('defaults and misuse', () => {
    expect(resolveBackoff(undefined)).toEqual({ initialMs: 500, maxMs: 30_000 });
    expect(() => resolveBackoff({ initialMs: 0 })).toThrow(TypeError);
    expect(() => resolveBackoff({ initialMs: 10, maxMs: 5 })).toThrow(TypeError);
  });
});
