import { availableParallelism } from 'node:os';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from '../../cli/src/cli-error.ts';
import { DEFAULT_UP_CONFIG, isLoopbackHost, resolveUpConfig, UP_SETTINGS } from '../../cli/src/config.ts';
import { checkBrokerConfig, resolveBrokerConfig } from '../../broker/src/config.ts';
import { MAX_AUDIENCE_LENGTH, MIN_PACKET_SIZE } from '@latchkey/device-sdk/protocol';
import { errorLine, runLatchkey, tempDir } from './cli-process.ts';

function problemOf(fn: () => unknown): CliError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CliError) return e;
    throw e;
  }
  throw new Error('expected a CliError');
}

describe('resolveUpConfig (configuration.md §`latchkey up`)', () => {
  const tmp = tempDir('config');
  afterAll(tmp.cleanup);

  it('defaults match docs/configuration.md and are frozen', () => {
    const c = resolveUpConfig({}, {});
    expect(c).toEqual(DEFAULT_UP_CONFIG);
    expect(c).toMatchObject({ dataDir: './data', httpPort: 8080, adminToken: null, logLevel: 'info' });
    expect(c.broker).toMatchObject({ host: '127.0.0.1', mqttPort: 1883, mqttsPort: null, wsPort: null, audience: 'latchkey', maxTokenLifetime: 86400, clockTolerance: 300, requireJti: false, connectTimeout: 10, maxPacketSize: 262144, authFailureLimit: 60 });
    expect(c.http).toMatchObject({ audience: 'latchkey', clockTolerance: 300, authFailureLimit: 30, trustProxy: [] });
    expect(c.broker.trustProxy).toEqual([]);
    expect(c.retention).toEqual({ auditRetentionMs: 2_592_000_000, maxRefusals: 100_000 });
    expect(c.broker).toEqual(resolveBrokerConfig({})); // the broker's own defaults, not a copy
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(DEFAULT_UP_CONFIG)).toBe(true);
  });

  it('flags win over environment variables, which win over defaults; ports may be 0', () => {
    const c = resolveUpConfig({ 'http-port': '0' }, { LATCHKEY_HTTP_PORT: '9000', LATCHKEY_MQTT_PORT: '0', LATCHKEY_AUDIENCE: 'fleet' });
    expect(c.httpPort).toBe(0);
    expect(c.broker.mqttPort).toBe(0);
    expect(c.broker.audience).toBe('fleet');
    expect(c.http.audience).toBe('fleet'); // enrollment proofs use the broker's audience
  });

  it('--verify-threads: the cores − 1 by default (0 on one core), from the flag or LATCHKEY_VERIFY_THREADS', () => {
    expect(DEFAULT_UP_CONFIG.broker.verifyThreads).toBe(Math.max(0, availableParallelism() - 1));
    expect(resolveUpConfig({ 'verify-threads': '0' }, { LATCHKEY_VERIFY_THREADS: '3' }).broker.verifyThreads).toBe(0);
    expect(resolveUpConfig({}, { LATCHKEY_VERIFY_THREADS: '3' }).broker.verifyThreads).toBe(3);
    const e = problemOf(() => resolveUpConfig({}, { LATCHKEY_VERIFY_THREADS: '-1' }));
    expect(e.message).toContain('LATCHKEY_VERIFY_THREADS');
    expect(e.message).toContain('--verify-threads');
  });

  it('parses booleans from the environment and the --require-jti switch', () => {
    expect(resolveUpConfig({}, { LATCHKEY_REQUIRE_JTI: 'true' }).broker.requireJti).toBe(true);
    expect(resolveUpConfig({}, { LATCHKEY_REQUIRE_JTI: 'off' }).broker.requireJti).toBe(false);
    expect(resolveUpConfig({ 'require-jti': true }, { LATCHKEY_REQUIRE_JTI: 'false' }).broker.requireJti).toBe(true);
    expect(problemOf(() => resolveUpConfig({}, { LATCHKEY_REQUIRE_JTI: 'maybe' })).message).toContain('LATCHKEY_REQUIRE_JTI');
  });

  it('reads --trust-proxy as a list of addresses, CIDR ranges and named ranges', () => {
    const c = resolveUpConfig({ 'trust-proxy': '10.0.0.0/8, 192.168.1.7,fd00::/8,loopback' }, {});
    expect(c.broker.trustProxy).toEqual(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', 'loopback']);
    expect(c.http.trustProxy).toEqual(c.broker.trustProxy); // one flag, both listeners
    expect(resolveUpConfig({}, { LATCHKEY_TRUST_PROXY: '127.0.0.1' }).broker.trustProxy).toEqual(['127.0.0.1']);
    expect(resolveUpConfig({}, { LATCHKEY_HTTP_AUTH_FAILURE_LIMIT: '0' }).http.authFailureLimit).toBe(0);
  });

  it('reads --audit-retention as a duration in s, m, h or d', () => {
    const ms = (flags: Record<string, string>, env: Record<string, string> = {}) => resolveUpConfig(flags, env).retention.auditRetentionMs;
    expect(ms({ 'audit-retention': '90d' })).toBe(90 * 86_400_000);
    expect(ms({ 'audit-retention': '12h' })).toBe(12 * 3_600_000);
    expect(ms({ 'audit-retention': '7200' })).toBe(7_200_000);
    expect(ms({}, { LATCHKEY_AUDIT_RETENTION: '120m' })).toBe(7_200_000);
    expect(resolveUpConfig({ 'audit-max-refusals': '5000' }, {}).retention.maxRefusals).toBe(5000);
  });

  it('treats an empty environment variable as unset', () => {
    expect(resolveUpConfig({}, { LATCHKEY_MQTT_PORT: '' }).broker.mqttPort).toBe(1883);
  });

  it.each([
    ['mqttPort', { LATCHKEY_MQTT_PORT: 'abc' }],
    ['mqttPort', { LATCHKEY_MQTT_PORT: '65536' }],
    ['httpPort', { LATCHKEY_HTTP_PORT: '-1' }],
    ['httpPort', { LATCHKEY_HTTP_PORT: '80.5' }],
    ['wsPort', { LATCHKEY_WS_PORT: '0x50' }],
    ['clockTolerance', { LATCHKEY_CLOCK_TOLERANCE: '1e3' }],
    ['maxTokenLifetime', { LATCHKEY_MAX_TOKEN_LIFETIME: '0' }],
    ['connectTimeout', { LATCHKEY_CONNECT_TIMEOUT: 'ten' }],
    ['maxPacketSize', { LATCHKEY_MAX_PACKET_SIZE: '100' }],
    ['authFailureLimit', { LATCHKEY_AUTH_FAILURE_LIMIT: '-5' }],
    ['httpAuthFailureLimit', { LATCHKEY_HTTP_AUTH_FAILURE_LIMIT: 'many' }],
    ['httpAuthFailureLimit', { LATCHKEY_HTTP_AUTH_FAILURE_LIMIT: '1000001' }],
    ['trustProxy', { LATCHKEY_TRUST_PROXY: '10.0.0.0/33' }],
    ['trustProxy', { LATCHKEY_TRUST_PROXY: '10.0.0.1,everyone' }],
    ['auditRetention', { LATCHKEY_AUDIT_RETENTION: '30 days' }],
    ['auditRetention', { LATCHKEY_AUDIT_RETENTION: '59m' }],
    ['auditMaxRefusals', { LATCHKEY_AUDIT_MAX_REFUSALS: '10' }],
    ['host', { LATCHKEY_HOST: 'not a host' }],
    ['logLevel', { LATCHKEY_LOG_LEVEL: 'loud' }],
    ['tlsCert', { LATCHKEY_MQTTS_PORT: '0', LATCHKEY_TLS_CERT: '/nonexistent/cert.pem', LATCHKEY_TLS_KEY: '/nonexistent/key.pem' }],
  ] as const)('an invalid %s names the variable and the flag', (key, env) => {
    const e = problemOf(() => resolveUpConfig({}, env));
    expect(e.code).toBe('invalid_config');
    expect(e.message).toContain(UP_SETTINGS[key].env);
    expect(e.message).toContain(`--${UP_SETTINGS[key].flag}`);
  });

  it('reports every problem in one error', () => {
    const e = problemOf(() => resolveUpConfig({ 'http-port': 'x' }, { LATCHKEY_MQTT_PORT: 'abc', LATCHKEY_CLOCK_TOLERANCE: '-1' }));
    for (const name of ['--http-port', 'LATCHKEY_MQTT_PORT', 'LATCHKEY_CLOCK_TOLERANCE']) expect(e.message).toContain(name);
    expect(e.message).not.toContain('\n');
  });

  it('checks settings that depend on each other', () => {
    expect(problemOf(() => resolveUpConfig({ 'mqtts-port': '8883' }, {})).message).toContain('--tls-cert');
    const cert = path.join(tmp.dir, 'cert.pem');
    writeFileSync(cert, 'x');
    expect(problemOf(() => resolveUpConfig({ 'tls-cert': cert, 'tls-key': cert }, {})).message).toContain('--mqtts-port');
    expect(resolveUpConfig({ 'tls-cert': cert, 'tls-key': cert, 'mqtts-port': '0' }, {}).broker.mqttsPort).toBe(0);
    expect(problemOf(() => resolveUpConfig({ 'http-port': '1883' }, {})).message).toContain('--mqtt-port');
    expect(resolveUpConfig({ 'http-port': '0', 'mqtt-port': '0', 'ws-port': '0' }, {}).broker.wsPort).toBe(0);
  });

  it('accepts and refuses exactly what the broker does, for every broker setting it exposes', () => {
    // regression: the CLI required maxPacketSize ≥ 8192 while createBroker took ≥ 64, and the broker took
    // any non-empty audience, any clock tolerance, lifetime, connect timeout and failure limit
    const cases: [string, string, unknown][] = [
      ['max-packet-size', 'maxPacketSize', 64],
      ['max-packet-size', 'maxPacketSize', MIN_PACKET_SIZE - 1],
      ['max-packet-size', 'maxPacketSize', MIN_PACKET_SIZE],
      ['audience', 'audience', 'a'.repeat(MAX_AUDIENCE_LENGTH)],
      ['audience', 'audience', 'a'.repeat(MAX_AUDIENCE_LENGTH + 1)],
      ['clock-tolerance', 'clockTolerance', 86_401],
      ['max-token-lifetime', 'maxTokenLifetime', 31_536_001],
      ['connect-timeout', 'connectTimeout', 3601],
      ['auth-failure-limit', 'authFailureLimit', 1_000_001],
      ['host', 'host', 'not a host'],
      ['verify-threads', 'verifyThreads', 0],
      ['verify-threads', 'verifyThreads', 256],
      ['verify-threads', 'verifyThreads', 257],
      ['verify-threads', 'verifyThreads', 1.5],
    ];
    for (const [flag, key, value] of cases) {
      const broker = checkBrokerConfig({ [key]: value }).ok;
      let cli = true;
      try {
        resolveUpConfig({ [flag]: String(value) }, {});
      } catch (e) {
        if (!(e instanceof CliError)) throw e;
        cli = false;
      }
      expect(cli, `--${flag} ${String(value).slice(0, 20)}`).toBe(broker);
    }
    expect(checkBrokerConfig({ maxPacketSize: 64 }).ok).toBe(false); // a CONNECT with a 4096-byte token must fit
  });

  it('never echoes an admin token, valid or not', () => {
    const secret = 'short-secret';
    const e = problemOf(() => resolveUpConfig({}, { LATCHKEY_ADMIN_TOKEN: secret }));
    expect(e.message).toContain('LATCHKEY_ADMIN_TOKEN');
    expect(e.message).not.toContain(secret);
    const good = 'a'.repeat(40);
    expect(resolveUpConfig({ 'admin-token': good }, {}).adminToken).toBe(good);
  });

  it('takes a PostgreSQL registry URL from --database-url or LATCHKEY_DATABASE_URL, and never echoes it', () => {
    expect(resolveUpConfig({}, {}).databaseUrl).toBeNull();
    const url = 'postgres://latchkey:pg-s3cret@db.internal:5432/latchkey';
    expect(resolveUpConfig({}, { LATCHKEY_DATABASE_URL: url }).databaseUrl).toBe(url);
    expect(resolveUpConfig({ 'database-url': url }, { LATCHKEY_DATABASE_URL: 'postgres://other/lk' }).databaseUrl).toBe(url);
    for (const bad of ['mysql://u:pg-s3cret@db/lk', 'postgres://u:pg-s3cret@/lk', 'pg-s3cret']) {
      const e = problemOf(() => resolveUpConfig({}, { LATCHKEY_DATABASE_URL: bad }));
      expect(e.code).toBe('invalid_config');
      expect(e.message).toContain('LATCHKEY_DATABASE_URL (--database-url) must be a postgres://');
      expect(e.message).not.toContain('pg-s3cret');
    }
  });

  it('knows loopback hosts', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.10', 'example.com'].some(isLoopbackHost)).toBe(false);
  });
});

describe('latchkey up: invalid configuration exits non-zero with one line naming the setting', () => {
  it('LATCHKEY_MQTT_PORT=abc', async () => {
    const r = await runLatchkey(['up'], { env: { LATCHKEY_MQTT_PORT: 'abc' } });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const err = errorLine(r.stderr);
    expect(err?.code).toBe('invalid_config');
    expect(err?.detail).toContain('LATCHKEY_MQTT_PORT');
    expect(err?.detail).toContain('--mqtt-port');
  });

  it('--http-port 99999 and an unknown flag', async () => {
    const bad = await runLatchkey(['up', '--http-port', '99999']);
    expect(bad.code).toBe(2);
    expect(errorLine(bad.stderr)?.detail).toContain('--http-port');
    const unknown = await runLatchkey(['up', '--mqtt-prot', '0']);
    expect(unknown.code).toBe(2);
    expect(errorLine(unknown.stderr)).toMatchObject({ code: 'usage' });
    expect(errorLine(unknown.stderr)?.detail).toContain('--mqtt-prot');
  });

  it('a missing value and an unknown command', async () => {
    const missing = await runLatchkey(['up', '--mqtt-port']);
    expect(missing.code).toBe(2);
    expect(errorLine(missing.stderr)?.detail).toContain('--mqtt-port');
    const cmd = await runLatchkey(['upp']);
    expect(cmd.code).toBe(2);
    expect(errorLine(cmd.stderr)?.code).toBe('usage');
  });
});

describe('latchkey --help', { timeout: 60_000 }, () => {
  it('lists every command, and each command has its own help', async () => {
    const r = await runLatchkey(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['up', 'keygen', 'token', 'devices', 'enroll-token', 'simulate']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    for (const c of [['up'], ['keygen'], ['token'], ['devices'], ['devices', 'add'], ['enroll-token'], ['simulate']]) {
      const h = await runLatchkey([...c, '--help']);
      expect(h.code, c.join(' ')).toBe(0);
      expect(h.stdout, c.join(' ')).toMatch(/^Usage: latchkey /);
    }
  });
});
