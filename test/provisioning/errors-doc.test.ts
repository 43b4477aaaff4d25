import { describe, expect, it } from 'vitest';
import { API_ERROR_STATUS } from '../../provisioning/src/http/api-error.ts';
import { documentedCodes } from '../helpers/doc-table.ts';

describe('docs/errors.md §HTTP API', () => {
  it('documents exactly the ApiErrorCode union, each with its HTTP status', () => {
    const documented = documentedCodes('HTTP API');
    expect([...documented.keys()].sort()).toEqual(Object.keys(API_ERROR_STATUS).sort());
    for (const [code, status] of Object.entries(API_ERROR_STATUS)) expect(documented.get(code), code).toBe(status);
  });
});

describe('docs/errors.md §Console pages', () => {
  it("documents exactly the console's own codes, each with its HTTP status", async () => {
    const { CONSOLE_ERROR_STATUS } = await import('../../console/src/pages/error.ts');
    const documented = documentedCodes('Console pages');
    expect([...documented.keys()].sort()).toEqual(Object.keys(CONSOLE_ERROR_STATUS).sort());
    for (const [code, status] of Object.entries(CONSOLE_ERROR_STATUS)) expect(documented.get(code), code).toBe(status);
  });
});
