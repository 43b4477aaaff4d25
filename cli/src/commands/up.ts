import path from 'node:path';
import { parseCommandArgs } from '../args.ts';
import type { Command, CommandContext } from '../command.ts';
import { DEFAULT_UP_CONFIG, isLoopbackHost, resolveUpConfig, UP_OPTIONS, UP_SETTINGS, type UpConfig, type UpSetting } from '../config.ts';
import { createLogger } from '../logger.ts';
import { displayPath } from '../paths.ts';
import { startStack, type Stack } from '../stack.ts';

const DESCRIPTIONS: Record<UpSetting, string> = {
  dataDir: 'SQLite database and generated admin token',
  databaseUrl: 'PostgreSQL registry instead of SQLite: postgres://user:password@host:port/db (never logged; prefer the variable)',
  host: 'interface to bind; nothing listens beyond loopback unless asked',
  httpPort: 'provisioning HTTP API (0 = any free port)',
  mqttPort: 'plain MQTT (0 = any free port)',
  mqttsPort: 'MQTT over TLS (needs --tls-cert, --tls-key)',
  tlsCert: 'PEM certificate (chain) for MQTTS',
  tlsKey: 'PEM private key for MQTTS',
  wsPort: 'MQTT over WebSocket',
  audience: 'the `aud` connect tokens must carry',
  maxTokenLifetime: 'largest exp − iat accepted, seconds',
  clockTolerance: 'allowed clock skew, seconds',
  requireJti: 'require a single-use jti in every token',
  connectTimeout: 'seconds from TCP connect to CONNECT',
  maxPacketSize: 'largest MQTT packet, bytes',
  authFailureLimit: 'MQTT: refused connects per address per minute before throttling (0 = off)',
  httpAuthFailureLimit: 'HTTP: refused admin / enrollment tokens per minute, per address (and per enrollment token id), before 429 (0 = off)',
  gcpProjects: 'Cloud IoT Core compatibility for these Google Cloud projects (comma-separated; docs/migrating-from-cloud-iot-core.md)',
  gcpMaxTokenLifetime: 'largest exp − iat of a Cloud IoT Core token, seconds',
  gcpClockTolerance: 'clock skew for Cloud IoT Core tokens, seconds (their sessions end at exp + this)',
  trustProxy: 'proxies that name the client: X-Forwarded-For, PROXY protocol on MQTT (comma-separated addresses, CIDRs, loopback)',
  requireSignedTopics: 'topic filters whose device → cloud topics need device-signed messages (e.g. devices/+/telemetry/#)',
  keyInUseMinutes: 'removing a key that verified a connect within this many minutes needs --force (0 = never)',
  auditRetention: 'audit history kept (30d, 12h, …); older entries are pruned in the background',
  auditMaxRefusals: 'refused-connect records kept at most; the oldest are pruned first',
  adminToken: 'admin API token (default: generated into <data dir>/admin-token)',
  logLevel: 'JSON log lines on stderr',
  redisUrl: 'Redis several nodes share (sessions, queues, routing, presence); see docs/operations.md',
  nodeId: 'this node\'s name in a cluster (letters, digits, _ -; default: host name + random)',
  role: 'both, api (HTTP API only) or broker (MQTT, HTTP operations endpoints only); api and broker need --redis-url',
  heartbeatInterval: 'seconds between cluster heartbeats and looks for dead nodes (whose wills are then published)',
  queuedMessageTtl: 'seconds a queued QoS 1 message is kept in Redis',
  verifyThreads: 'threads checking connect-token signatures off the main thread (0 = on it; default: cores − 1)',
};

const PLACEHOLDER: Partial<Record<UpSetting, string>> = {
  dataDir: '<dir>',
  databaseUrl: '<url>',
  host: '<addr>',
  httpPort: '<port>',
  mqttPort: '<port>',
  mqttsPort: '<port>',
  wsPort: '<port>',
  tlsCert: '<file>',
  tlsKey: '<file>',
  audience: '<aud>',
  maxTokenLifetime: '<s>',
  clockTolerance: '<s>',
  connectTimeout: '<s>',
  maxPacketSize: '<bytes>',
  authFailureLimit: '<n>',
  httpAuthFailureLimit: '<n>',
  trustProxy: '<cidrs>',
  gcpProjects: '<ids>',
  gcpMaxTokenLifetime: '<s>',
  gcpClockTolerance: '<s>',
  requireSignedTopics: '<filters>',
  keyInUseMinutes: '<min>',
  auditRetention: '<duration>',
  auditMaxRefusals: '<n>',
  adminToken: '<token>',
  logLevel: '<level>',
  redisUrl: '<url>',
  nodeId: '<name>',
  role: '<role>',
  heartbeatInterval: '<s>',
  queuedMessageTtl: '<s>',
  verifyThreads: '<n>',
};

/** The default each setting's owner gives it. */
function defaultOf(name: UpSetting): string {
  if (name === 'adminToken') return 'generated';
  if (name === 'databaseUrl') return 'SQLite in the data dir';
  const s = UP_SETTINGS[name];
  const owner = s.owners[0]!;
  const defaults: object = owner === 'cli' ? DEFAULT_UP_CONFIG : DEFAULT_UP_CONFIG[owner];
  if (name === 'nodeId') return 'generated';
  const v = (defaults as Record<string, unknown>)[s.key ?? name];
  if (s.kind === 'duration') return `${(v as number) / 86_400_000}d`;
  return v === null || (Array.isArray(v) && v.length === 0) ? 'off' : String(v);
}

const HELP = [
  'Usage: latchkey up [options]',
  '',
  'Runs the provisioning HTTP API and the MQTT broker in one process on one SQLite file',
  '(or on a PostgreSQL registry with --database-url).',
  'Prints one line per listener on stdout, with the ports actually bound, then the admin token location:',
  '  http: http://127.0.0.1:8080',
  '  mqtt: mqtt://127.0.0.1:1883',
  '  admin token: data/admin-token',
  'SIGINT/SIGTERM close sessions, HTTP and the database within 5 s.',
  'The operators\' console is served on the HTTP port at /console/ (sign in with the admin token; docs/console.md).',
  '',
  'Options (flag, environment variable, default):',
  ...(Object.keys(UP_SETTINGS) as UpSetting[]).map((k) => {
    const s = UP_SETTINGS[k];
    const flag = s.kind === 'switch' ? `--${s.flag}` : `--${s.flag} ${PLACEHOLDER[k] ?? '<value>'}`;
    return `  ${flag.padEnd(30)} ${s.env.padEnd(28)} ${defaultOf(k)}\n      ${DESCRIPTIONS[k]}`;
  }),
  '',
  'Details: docs/configuration.md',
].join('\n');

/** `latchkey up` (docs/configuration.md): the one-command stack. */
export const upCommand: Command = {
  name: 'up',
  help: HELP,
  async run(ctx) {
    const { values } = parseCommandArgs('up', ctx.argv, UP_OPTIONS, 0);
    const config = resolveUpConfig(values as Record<string, string | boolean | undefined>, ctx.env);
    const log = createLogger(config.logLevel);
    const stack = await startStack({ ...config, dataDir: path.resolve(ctx.cwd, config.dataDir) }, { log });
    const tokenSource = values['admin-token'] !== undefined ? '--admin-token' : 'LATCHKEY_ADMIN_TOKEN';
    announce(ctx, config, stack, tokenSource);
    const code = await waitForSignal(stack);
    // Whatever else still holds the event loop (a client's keep-alive socket), exit now: docs/configuration.md's 5 s.
    setTimeout(() => process.exit(code), 250).unref();
    return code;
  },
};

/** stdout: the address lines scripts read (docs/configuration.md); stderr: a warning when exposed without TLS. */
function announce(ctx: CommandContext, config: UpConfig, stack: Stack, tokenSource: string): void {
  const a = stack.addresses;
  if (!isLoopbackHost(config.broker.host)) {
    const plain = [...(a.mqtt !== null ? [`mqtt ${a.mqtt.port}`] : []), ...(a.ws !== null ? [`ws ${a.ws.port}`] : [])].join(', ');
    ctx.err(
      `warning: insecure_listener: listening on ${config.broker.host} beyond loopback with plain MQTT (${plain}) and plain HTTP: ` +
        'connect tokens and the admin token cross the network unencrypted; serve MQTT with --mqtts-port/--tls-cert/--tls-key and put HTTP behind TLS, or use --host 127.0.0.1',
    );
  }
  ctx.out(`http: ${a.http.url}`);
  if (a.mqtt !== null) ctx.out(`mqtt: ${a.mqtt.url}`);
  if (a.mqtts !== null) ctx.out(`mqtts: ${a.mqtts.url}`);
  if (a.ws !== null) ctx.out(`ws: ${a.ws.url}`);
  ctx.out(`admin token: ${stack.adminTokenPath === null ? `from ${tokenSource}` : displayPath(ctx.cwd, stack.adminTokenPath)}`);
}

/**
 * Runs until SIGINT or SIGTERM, then closes everything within 5 s (docs/configuration.md) and exits 0.
 * A second signal during shutdown exits at once with 130.
 */
function waitForSignal(stack: Stack): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) {
        process.exit(130);
      }
      stopping = true;
      void stack.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
