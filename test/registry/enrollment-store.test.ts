import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newKey, registryErrorCode, registryFixture, type RegistryFixture } from './registry-fixture.ts';

const hash = (s: string) => createHash('sha256').update(s).digest();

let fx: RegistryFixture;
beforeEach(() => {
  fx = registryFixture();
});
afterEach(() => fx.cleanup());

function token(uses: number, idPattern: string | null = null) {
  return fx.registry.enrollment.create(
    { tokenId: `tok${uses}`, secretHash: hash('s3cret'), uses, expiresAt: fx.clock() + 60_000, idPattern, metadata: { batch: 7 } },
    'admin',
  );
}

describe('enrollment tokens in the registry', () => {
  it('consumes one use atomically with the registration and merges token metadata', () => {
    token(2);
    const d = fx.registry.enrollment.enroll('tok2', hash('s3cret'), { id: 'enr-1', key: newKey().parsed, metadata: { x: 1 } });
    expect(d.metadata).toEqual({ batch: 7, x: 1 });
    expect(fx.registry.enrollment.list({ limit: 100 }).items[0]).toMatchObject({ usesTotal: 2, usesLeft: 1 });
    fx.registry.enrollment.enroll('tok2', hash('s3cret'), { id: 'enr-2', key: newKey().parsed });
    expect(registryErrorCode(() => fx.registry.enrollment.enroll('tok2', hash('s3cret'), { id: 'enr-3', key: newKey().parsed }))).toBe(
      'enrollment_token_invalid',
    );
    expect(fx.registry.devices.find('enr-3')).toBeNull();
    expect(fx.registry.audit.list({ limit: 10, target: 'enr-1' })).toMatchObject([{ actor: 'enrollment:tok2', action: 'device.enroll' }]);
  });

  it('a refused enrollment consumes nothing', () => {
    token(1, 'lock-[0-9]+');
    const taken = newKey();
    fx.registry.devices.create({ id: 'lock-9', key: taken.parsed }, 'admin');
    const attempts: Array<[string, () => unknown]> = [
      ['enrollment_token_invalid', () => fx.registry.enrollment.enroll('tok1', hash('wrong'), { id: 'lock-1', key: newKey().parsed })],
      ['enrollment_token_invalid', () => fx.registry.enrollment.enroll('nope', hash('s3cret'), { id: 'lock-1', key: newKey().parsed })],
      ['device_id_not_allowed', () => fx.registry.enrollment.enroll('tok1', hash('s3cret'), { id: 'thermo-1', key: newKey().parsed })],
      ['device_exists', () => fx.registry.enrollment.enroll('tok1', hash('s3cret'), { id: 'lock-9', key: newKey().parsed })],
      ['key_in_use', () => fx.registry.enrollment.enroll('tok1', hash('s3cret'), { id: 'lock-2', key: taken.parsed })],
    ];
    for (const [code, attempt] of attempts) expect(registryErrorCode(attempt)).toBe(code);
    expect(fx.registry.enrollment.list({ limit: 100 }).items[0]!.usesLeft).toBe(1);
    expect(fx.registry.devices.list({ limit: 10 }).items.map((d) => d.id)).toEqual(['lock-9']);
    fx.registry.enrollment.enroll('tok1', hash('s3cret'), { id: 'lock-1', key: newKey().parsed });
    expect(fx.registry.enrollment.list({ limit: 100 }).items[0]!.usesLeft).toBe(0);
  });

  it('expires by the injected clock', () => {
    token(5);
    expect(fx.registry.enrollment.check('tok5', hash('s3cret')).usesLeft).toBe(5);
    fx.clock.advance(60_000);
    expect(registryErrorCode(() => fx.registry.enrollment.check('tok5', hash('s3cret')))).toBe('enrollment_token_invalid');
    expect(registryErrorCode(() => fx.registry.enrollment.enroll('tok5', hash('s3cret'), { id: 'late-1', key: newKey().parsed }))).toBe(
      'enrollment_token_invalid',
    );
  });

  it('stores only the hash and deletes tokens', () => {
    token(1);
    expect(JSON.stringify(fx.registry.enrollment.list({ limit: 100 }).items)).not.toContain('s3cret');
    fx.registry.enrollment.delete('tok1', 'admin');
    expect(fx.registry.enrollment.list({ limit: 100 }).items).toEqual([]);
    expect(registryErrorCode(() => fx.registry.enrollment.delete('tok1', 'admin'))).toBe('enrollment_token_not_found');
  });
});
