import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from '../../cli/src/cli-error.ts';
import { DEFAULT_UP_CONFIG, isLoopbackHost, resolveUpConfig, UP_SETTINGS } from '../../cli/src/config.ts';
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

describe('resolveUpConfig (cli.md §Configuration)', () => {
  const tmp = tempDir('config');
  afterAll(tmp.cleanup);

  it('defaults match cli.md and are frozen', () => {
    const c = resolveUpConfig({}, {});
    expect(c).toEqual(DEFAULT_UP_CONFIG);
    expect(c).toMatchObject({ dataDir: './data', host: '127.0.0.1', httpPort: 8080, mqttPort: 1883, mqttsPort: null, wsPort: null, audience: 'latchkey', maxTokenLifetime: 86400, clockTolerance: 300, requireJti: false, connectTimeout: 10, maxPacketSize: 262144, authFailureLimit: 60, httpAuthFailureLimit: 30, trustProxy: null, auditRetention: 2_592_000, auditMaxRefusals: 100_000, adminToken: null });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(DEFAULT_UP_CONFIG)).toBe(true);
  });

  it('flags win over environment variables, which win over defaults; ports may be 0', () => {
    const c = resolveUpConfig({ 'http-port': '0' }, { LATCHKEY_HTTP_PORT: '9000', LATCHKEY_MQTT_PORT: '0', LATCHKEY_AUDIENCE: 'fleet' });
    expect(c.httpPort).toBe(0);
    expect(c.mqttPort).toBe(0);
    expect(c.audience).toBe('fleet');
  });

  it('parses booleans from the environment and the --require-jti switch', () => {
    expect(resolveUpConfig({}, { LATCHKEY_REQUIRE_JTI: 'true' }).requireJti).toBe(true);
    expect(resolveUpConfig({}, { LATCHKEY_REQUIRE_JTI: 'off' }).requireJti).toBe(false);
    expect(resolveUpConfig({ 'require-jti': true }, { LATCHKEY_REQUIRE_JTI: 'false' }).requireJti).toBe(true);
    expect(problemOf(() => resolveUpConfig({}, { LATCHKEY_REQUIRE_JTI: 'maybe' })).message).toContain('LATCHKEY_REQUIRE_JTI');
  });

  it('reads --trust-proxy as a list of addresses, CIDR ranges and named ranges', () => {
    expect(resolveUpConfig({ 'trust-proxy': '10.0.0.0/8, 192.168.1.7,fd00::/8,loopback' }, {}).trustProxy).toEqual(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', 'loopback']);
    expect(resolveUpConfig({}, { LATCHKEY_TRUST_PROXY: '127.0.0.1' }).trustProxy).toEqual(['127.0.0.1']);
    expect(resolveUpConfig({}, { LATCHKEY_HTTP_AUTH_FAILURE_LIMIT: '0' }).httpAuthFailureLimit).toBe(0);
  });

  it('reads --audit-retention as a duration in s, m, h or d', () => {
    expect(resolveUpConfig({ 'audit-retention': '90d' }, {}).auditRetention).toBe(90 * 86_400);
    expect(resolveUpConfig({ 'audit-retention': '12h' }, {}).auditRetention).toBe(12 * 3600);
    expect(resolveUpConfig({ 'audit-retention': '7200' }, {}).auditRetention).toBe(7200);
    expect(resolveUpConfig({}, { LATCHKEY_AUDIT_RETENTION: '120m' }).auditRetention).toBe(7200);
  });

  it('treats an empty environment variable as unset', () => {
    expect(resolveUpConfig({}, { LATCHKEY_MQTT_PORT: '' }).mqttPort).toBe(1883);
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
    expect(resolveUpConfig({ 'tls-cert': cert, 'tls-key': cert, 'mqtts-port': '0' }, {}).mqttsPort).toBe(0);
    expect(problemOf(() => resolveUpConfig({ 'http-port': '1883' }, {})).message).toContain('--mqtt-port');
    expect(resolveUpConfig({ 'http-port': '0', 'mqtt-port': '0', 'ws-port': '0' }, {}).wsPort).toBe(0);
  });

  it('never echoes an admin token, valid or not', () => {
    const secret = 'short-secret';
    const e = problemOf(() => resolveUpConfig({}, { LATCHKEY_ADMIN_TOKEN: secret }));
    expect(e.message).toContain('LATCHKEY_ADMIN_TOKEN');
    expect(e.message).not.toContain(secret);
    const good = 'a'.repeat(40);
    expect(resolveUpConfig({ 'admin-token': good }, {}).adminToken).toBe(good);
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
