/**
 * Issue 16, finding 5: every refused MQTT connect wrote an audit row and a log line; 2,000 junk
 * connects from 100 addresses added 725 KB. Repeats are now aggregated ("N more in the last
 * minute"), nothing is written on the connect path, and every device's lastError still follows.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RefusalLog } from '../../broker/src/auth/refusal-log.ts';
import type { AuthFailureRecord } from '../../broker/src/registry-port.ts';
import { connackFor } from './helpers/raw-mqtt.ts';
import { startBroker, waitFor, type BrokerFixture } from './helpers/broker-fixture.ts';

const T = 1_800_000_000_000;
const refusal = (over: Partial<AuthFailureRecord> = {}): AuthFailureRecord => ({
  principal: 'ghost-1',
  clientId: 'ghost-1',
  reason: 'unknown_principal',
  remoteAddress: '10.0.0.1',
  at: T,
  ...over,
});
const total = (records: AuthFailureRecord[]) => records.reduce((n, r) => n + (r.repeated?.count ?? 1), 0);

describe('RefusalLog', () => {
  it('records a refusal once per window and summarizes its repeats when the window ends', () => {
    const log = new RefusalLog();
    const recorded = Array.from({ length: 100 }, (_, i) => log.add(refusal({ at: T + i * 100 }), true));
    expect(recorded.filter(Boolean)).toHaveLength(1);
    const first = log.drain(T + 30_000);
    expect(first.records).toEqual([refusal()]);
    expect(first.lastErrors).toEqual([['ghost-1', 'unknown_principal', T + 9_900]]);
    expect(log.drain(T + 59_999).records).toEqual([]);
    const later = log.drain(T + 60_000);
    expect(later.records).toEqual([
      { principal: 'ghost-1', remoteAddress: '10.0.0.1', clientId: 'ghost-1', reason: 'unknown_principal', at: T + 9_900, repeated: { count: 99, reasons: { unknown_principal: 99 }, since: T } },
    ]);
    // a new window records again
    expect(log.add(refusal({ at: T + 61_000 }), true)).toBe(true);
  });

  it('one address spraying principals: perKey records, then one summary for the address', () => {
    const log = new RefusalLog();
    for (let i = 0; i < 1000; i++) log.add(refusal({ principal: `ghost-${i}`, clientId: `ghost-${i}` }), true);
    const { records } = log.drain(T + 60_000);
    expect(records).toHaveLength(11);
    expect(records.at(-1)).toMatchObject({ principal: null, remoteAddress: '10.0.0.1', repeated: { count: 990 } });
    expect(total(records)).toBe(1000);
  });

  it('many addresses against one principal: perKey records, then one summary for the principal', () => {
    const log = new RefusalLog();
    for (let i = 0; i < 1000; i++) log.add(refusal({ remoteAddress: `10.0.${i >> 8}.${i & 255}`, reason: 'signature_invalid' }), true);
    const { records } = log.drain(T + 60_000);
    expect(records).toHaveLength(11);
    expect(records.at(-1)).toMatchObject({ principal: 'ghost-1', remoteAddress: null, repeated: { count: 990, reasons: { signature_invalid: 990 } } });
    expect(total(records)).toBe(1000);
  });

  it('distinct reasons of one device are each recorded; a flood of everything is capped', () => {
    const log = new RefusalLog();
    for (const reason of ['token_expired', 'signature_invalid', 'audience_mismatch'] as const) expect(log.add(refusal({ principal: 'thermo-1', reason }), true)).toBe(true);
    const flood = new RefusalLog();
    for (let i = 0; i < 5000; i++) flood.add(refusal({ principal: `p-${i}`, remoteAddress: `10.1.${i >> 8}.${i & 255}` }), true);
    const { records } = flood.drain(T + 60_000);
    expect(records.filter((r) => r.repeated === undefined)).toHaveLength(flood.limits.perWindow);
    expect(records.length).toBeLessThanOrEqual(3 * flood.limits.perWindow + 1);
    expect(total(records)).toBe(5000);
  });

  it('counts a repeated throttled attempt (notice false) without recording it; services get no lastError', () => {
    const log = new RefusalLog();
    expect(log.add(refusal({ reason: 'throttled' }), false)).toBe(false);
    log.add(refusal({ principal: 'svc:dash', reason: 'signature_invalid' }), true);
    expect(log.drain(T).lastErrors).toEqual([['ghost-1', 'throttled', T]]);
  });
});

let fx: BrokerFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

describe('junk connects from many addresses (the reported flood, scaled down)', () => {
  it('write a bounded number of audit rows and log lines, lose no count, and set every known device lastError', { timeout: 60_000 }, async () => {
    fx = await startBroker({ authFailureLimit: 0 });
    await fx.device('thermo-1');
    const auditRows = async () => (await fx!.registry.audit.list({ limit: 1000 })).filter((e) => e.action === 'auth.failure');
    const ADDRESSES = 25;
    const PER_ADDRESS = 16;
    for (let a = 0; a < ADDRESSES; a++) {
      const from = `127.0.0.${a + 2}`;
      await Promise.all(
        Array.from({ length: PER_ADDRESS }, (_, i) => connackFor(fx!.port, { clientId: i === 0 ? 'thermo-1' : `junk-${a}-${i}`, username: 'u', password: 'x.y.z' }, from)),
      );
    }
    const refused = ADDRESSES * PER_ADDRESS;
    await waitFor(async () => (await auditRows()).length >= 100);
    expect(fx.log.entries.filter((e) => e.msg === 'connect refused').length).toBe(100); // perWindow, not one per connect
    await waitFor(async () => (await fx!.registry.devices.get('thermo-1')).status.lastError?.code === 'token_malformed');
    fx.clock.advance(60_000);
    await waitFor(async () => (await auditRows()).reduce((n, e) => n + ((e.detail.repeated as number | undefined) ?? 1), 0) === refused);
    const rows = await auditRows();
    expect(rows.length).toBeLessThan(refused / 3);
    const summaries = rows.filter((e) => e.detail.repeated !== undefined);
    expect(summaries.length).toBeGreaterThan(0);
    expect(summaries[0]!.detail).toMatchObject({ reason: 'token_malformed', reasons: { token_malformed: expect.any(Number) }, since: expect.any(Number) });
    expect(fx.log.entries.filter((e) => e.msg === 'more connects refused in the last minute').length).toBe(summaries.length);
  });
});
