import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as sdk from '@latchkey/device-sdk';
import * as tokenEntry from '@latchkey/device-sdk/token';

const root = new URL('../../', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), 'utf8');

describe('@latchkey/device-sdk public entry', () => {
  it('exports exactly this list of runtime values (architecture.md §Conventions)', () => {
    expect(Object.keys(sdk).sort()).toEqual(
      [
        'CommandError',
        'DEVICE_CLIENT_ERROR_CODES',
        'DEVICE_MESSAGE_ERROR_CODES',
        'DeviceClient',
        'DeviceClientError',
        'DeviceKeyError',
        'DeviceMessageError',
        'PRIVATE_KEY_FILE',
        'PUBLIC_KEY_FILE',
        'RegistryKeySource',
        'ReplayWindow',
        'ServiceClient',
        'encodePayload',
        'enroll',
        'fetchClockOffset',
        'generateDeviceKeyPair',
        'isDeviceClientError',
        'isDeviceMessageError',
        'loadPrivateKey',
        'loadPrivateKeyPem',
        'mintConnectToken',
        'mintEnrollProof',
        'privateKeyToPem',
        'publicKeyToPem',
        'saveKeyPair',
        'signDeviceMessage',
        'verifyDeviceMessage',
      ].sort(),
    );
  });

  it('is an explicit list: no `export *`', () => {
    expect(read('device-sdk/src/index.ts')).not.toMatch(/^\s*export\s+\*/m);
    expect(read('device-sdk/src/token-entry.ts')).not.toMatch(/^\s*export\s+\*/m);
  });

  it('@latchkey/device-sdk/token: keys and minting, the same functions as the main entry, plus the subject, audience and kid rules', () => {
    const names = Object.keys(tokenEntry).sort();
    expect(names).toEqual(
      [
        'DEFAULT_TOKEN_RULES',
        'DEVICE_ID_PATTERN',
        'DeviceKeyError',
        'MAX_AUDIENCE_LENGTH',
        'MAX_KID_LENGTH',
        'PRIVATE_KEY_FILE',
        'PUBLIC_KEY_FILE',
        'generateDeviceKeyPair',
        'isAudience',
        'isKid',
        'isPrincipal',
        'loadPrivateKey',
        'loadPrivateKeyPem',
        'mintConnectToken',
        'mintEnrollProof',
        'privateKeyToPem',
        'publicKeyToPem',
        'saveKeyPair',
      ].sort(),
    );
    for (const name of names) if (name in sdk) expect((tokenEntry as Record<string, unknown>)[name], name).toBe((sdk as Record<string, unknown>)[name]);
    expect(read('docs/sdk.md')).toContain('@latchkey/device-sdk/token');
  });

  it('every value export is documented in docs/sdk.md', () => {
    const doc = read('docs/sdk.md');
    for (const name of Object.keys(sdk)) expect(doc, name).toContain(`\`${name}`);
  });

  it('every public function and class carries TSDoc with an @example', () => {
    const dir = new URL('device-sdk/src/', root);
    const sources = readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(new URL(f, dir), 'utf8'))
      .join('\n');
    const publicNames = new Set(Object.keys(sdk));
    let checked = 0;
    for (const m of sources.matchAll(/(\*\/)?\n(?:\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\n)?export (?:async )?(?:function|class) (\w+)/g)) {
      if (!publicNames.has(m[3] as string)) continue;
      checked++;
      expect(m[2] ?? '', m[3]).toContain('@example');
    }
    expect(checked).toBeGreaterThanOrEqual(15);
  });

  it('the error-code table in docs/sdk.md matches DEVICE_CLIENT_ERROR_CODES exactly (architecture.md §Conventions)', () => {
    const doc = read('docs/sdk.md');
    const section = doc.slice(doc.indexOf('## Error codes'));
    const documented = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...sdk.DEVICE_CLIENT_ERROR_CODES].sort());
    expect(new Set(sdk.DEVICE_CLIENT_ERROR_CODES).size).toBe(sdk.DEVICE_CLIENT_ERROR_CODES.length);
  });

  it('isDeviceClientError narrows by code', () => {
    const e = new sdk.DeviceClientError('bad_credentials', 'refused', { returnCode: 4 });
    expect(sdk.isDeviceClientError(e)).toBe(true);
    expect(sdk.isDeviceClientError(e, 'not_authorized')).toBe(false);
    expect(sdk.isDeviceClientError(e, 'not_authorized', 'bad_credentials')).toBe(true);
    expect(sdk.isDeviceClientError(new Error('x'))).toBe(false);
  });
});
