import { describe, expect, it } from 'vitest';
import { AUTH_FAILURE_CODES, CONNACK_FOR } from '@latchkey/device-sdk/protocol';
import { documentedCodes } from '../helpers/doc-table.ts';

describe('docs/errors.md §MQTT CONNECT refusals', () => {
  it('documents exactly the AuthFailureCode union, each with its CONNACK code', () => {
    const documented = documentedCodes('MQTT CONNECT refusals');
    expect([...documented.keys()].sort()).toEqual([...AUTH_FAILURE_CODES].sort());
    for (const code of AUTH_FAILURE_CODES) expect(documented.get(code), code).toBe(CONNACK_FOR[code]);
  });
});
