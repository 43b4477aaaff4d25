import { describe, expect, it } from 'vitest';
import { CliError, formatError } from '../../cli/src/cli-error.ts';
import { redactSecrets } from '../../cli/src/redact.ts';

describe('CLI error lines never carry secrets', () => {
  it('redacts JWS tokens, PEM blocks and bearer credentials', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0aGVybW8tMSJ9.c2lnbmF0dXJl';
    const pem = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----';
    const out = redactSecrets(`token ${jwt} key ${pem} header Authorization: Bearer abc.def-123`);
    expect(out).not.toContain('c2lnbmF0dXJl');
    expect(out).not.toContain('MIGHAgEAMBMGByqGSM49');
    expect(out).not.toContain('abc.def-123');
    expect(out).toBe('token [redacted] key [redacted] header Authorization: Bearer [redacted]');
  });

  it('formats one line with the code, and exit codes by kind', () => {
    expect(formatError(new CliError('device_exists', 'thermo-1\nexists'))).toBe('error: device_exists: thermo-1 exists');
    expect(new CliError('usage', 'x').exitCode).toBe(2);
    expect(new CliError('invalid_config', 'x').exitCode).toBe(2);
    expect(new CliError('device_not_found', 'x').exitCode).toBe(1);
  });
});
