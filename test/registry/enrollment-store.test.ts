import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS, newKey, registryErrorCode, registryFixture, type RegistryFixture } from './registry-fixture.ts';

const hash = (s: string) => createHash('sha256').update(s).digest();

describe.each(BACKENDS)('enrollment tokens in the registry on %s', (backend) => {
  let fx: RegistryFixture;
  beforeEach(async () => {
    fx = await registryFixture(backend);
  });
  afterEach(() => fx.cleanup());

  function token(uses: number, idPattern: string | null = null) {
    return fx.registry.enrollment.create(
      { tokenId: `tok${uses}`, secretHash: hash('s3cret'), uses, expiresAt: fx.clock() + 60_000, idPattern, metadata: { batch: 7 } },
      'admin',
    );
  }

  it('consumes one use atomically with the registration and merges token metadata', async () => {
    await token(2);
    const d = await fx.registry.enrollment.enroll('tok2', hash('s3cret'), { id: 'enr-1', key: newKey().parsed, metadata: { x: 1 } });
    expect(d.metadata).toEqual({ batch: 7, x: 1 });
    expect((await fx.registry.enrollment.list({ limit: 100 })).items[0]).toMatchObject({ usesTotal: 2, usesLeft: 1 });
    await fx.registry.enrollment.enroll('tok2', hash('s3cret'), { id: 'enr-2', key: newKey().parsed });
    expect(await registryErrorCode(() => fx.registry.enrollment.enroll('tok2', hash('s3cret'), { id: 'enr-3', key: newKey().parsed }))).toBe(
      'enrollment_token_invalid',
    );
    expect(await fx.registry.devices.find('enr-3')).toBeNull();
    expect(await fx.registry.audit.list({ limit: 10, target: 'enr-1' })).toMatchObject([{ actor: 'enrollment:tok2', action: 'device.enroll' }]);
  });

  it('a refused enrollment consumes nothing', async () => {
    await token(1, 'lock-[0-9]+');
    const taken = newKey();
    await fx.registry.devices.create({ id: 'lock-9', key: taken.parsed }, 'admin');
    const attempts: Array<[string, () => Promise<unknown>]> = [
      ['enrollment_token_invalid', () => fx.registry.enrollment.enroll('tok1', hash('wrong'), { id: 'lock-1', key: newKey().parsed })],
      ['enrollment_token_invalid', () => fx.registry.enrollment.enroll('nope', hash('s3cret'), { id: 'lock-1', key: newKey().parsed })],
      ['device_id_not_allowed', () => fx.registry.enrollment.enroll('tok1', hash('s3cret'), { id: 'thermo-1', key: newKey().parsed })],
      ['device_exists', () => fx.registry.enrollment.enroll('tok1', hash('s3cret'), { id: 'lock-9', key: newKey().parsed })],
      ['key_in_use', () => fx.registry.enrollment.enroll('tok1', hash('s3cret'), { id: 'lock-2', key: taken.parsed })],
    ];
    for (const [code, attempt] of attempts) expect(await registryErrorCode(attempt)).toBe(code);
    expect((await fx.registry.enrollment.list({ limit: 100 })).items[0]!.usesLeft).toBe(1);
    expect((await fx.registry.devices.list({ limit: 10 })).items.map((d) => d.id)).toEqual(['lock-9']);
    await fx.registry.enrollment.enroll('tok1', hash('s3cret'), { id: 'lock-1', key: newKey().parsed });
    expect((await fx.registry.enrollment.list({ limit: 100 })).items[0]!.usesLeft).toBe(0);
  });

  it('redeems the last use once when two enrollments race for it', async () => {
    await token(1);
    const results = await Promise.allSettled(
      ['race-1', 'race-2', 'race-3'].map((id) => fx.registry.enrollment.enroll('tok1', hash('s3cret'), { id, key: newKey().parsed })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual([
      'enrollment_token_invalid',
      'enrollment_token_invalid',
    ]);
    expect((await fx.registry.devices.list({ limit: 10 })).items).toHaveLength(1);
  });

  it('expires by the injected clock', async () => {
    await token(5);
    expect((await fx.registry.enrollment.check('tok5', hash('s3cret'))).usesLeft).toBe(5);
    fx.clock.advance(60_000);
    expect(await registryErrorCode(() => fx.registry.enrollment.check('tok5', hash('s3cret')))).toBe('enrollment_token_invalid');
    expect(await registryErrorCode(() => fx.registry.enrollment.enroll('tok5', hash('s3cret'), { id: 'late-1', key: newKey().parsed }))).toBe(
      'enrollment_token_invalid',
    );
  });

  it('stores only the hash and deletes tokens', async () => {
    await token(1);
    expect(JSON.stringify((await fx.registry.enrollment.list({ limit: 100 })).items)).not.toContain('s3cret');
    await fx.registry.enrollment.delete('tok1', 'admin');
    expect((await fx.registry.enrollment.list({ limit: 100 })).items).toEqual([]);
    expect(await registryErrorCode(() => fx.registry.enrollment.delete('tok1', 'admin'))).toBe('enrollment_token_not_found');
  });
});
