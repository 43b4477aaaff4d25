import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AUTH_FAILURE_CODES, CONNACK_FOR, MESSAGE_FAILURE_CODES, PROTOCOL_ERROR_CODES } from '@latchkey/device-sdk/protocol';
import { DEVICE_MESSAGE_ERROR_CODES } from '@latchkey/device-sdk';
import { documentedCodes } from '../helpers/doc-table.ts';

describe('docs/errors.md §MQTT CONNECT refusals', () => {
  it('documents exactly the AuthFailureCode union, each with its CONNACK code', () => {
    const documented = documentedCodes('MQTT CONNECT refusals');
    expect([...documented.keys()].sort()).toEqual([...AUTH_FAILURE_CODES].sort());
    for (const code of AUTH_FAILURE_CODES) expect(documented.get(code), code).toBe(CONNACK_FOR[code]);
  });
});

describe('the ProtocolErrorCode union', () => {
  it('holds no dead code: each one is raised somewhere outside the tables that list them', () => {
    const root = new URL('../../', import.meta.url);
    const tables = new Set(['device-sdk/src/protocol/errors.ts', 'device-sdk/src/protocol/connack.ts', 'provisioning/src/http/error-mapping.ts']);
    const code = ['device-sdk/src', 'broker/src', 'provisioning/src']
      .flatMap((dir) => readdirSync(new URL(dir, root), { recursive: true, encoding: 'utf8' }).map((f) => `${dir}/${f}`))
      .filter((f) => f.endsWith('.ts') && !tables.has(f))
      .map((f) => readFileSync(new URL(f, root), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1'))
      .join('\n');
    expect(PROTOCOL_ERROR_CODES.filter((c) => !code.includes(`'${c}'`))).toEqual([]);
  });
});

describe('docs/errors.md §Signed message refusals', () => {
  it('documents exactly the MessageFailureCode union, each with its step of protocol.md §Verifying a message', () => {
    const documented = documentedCodes('Signed message refusals');
    expect([...documented.keys()].sort()).toEqual([...MESSAGE_FAILURE_CODES].sort());
    for (const step of documented.values()) expect(step >= 1 && step <= 8).toBe(true);
  });

  it("the SDK's DEVICE_MESSAGE_ERROR_CODES are those codes", () => {
    expect([...DEVICE_MESSAGE_ERROR_CODES].sort()).toEqual([...MESSAGE_FAILURE_CODES].sort());
  });
});
