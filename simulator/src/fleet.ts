/**
 * The fleet runner behind `latchkey simulate` (docs/simulator.md): provisions devices through the
 * HTTP API, counts their QoS 1 telemetry at a service account of its own, ramps the connects,
 * holds a steady state with backend commands and rogue clients, drains, and reports.
 * Built only from the SDK's public API and HTTP, like a customer's fleet.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { ServiceClient, enroll, generateDeviceKeyPair, isDeviceClientError, isDeviceMessageError, mintConnectToken, publicKeyToPem } from '@latchkey/device-sdk';
import { inParallel, sleep } from './async-tools.ts';
import { CommandDriver } from './command-driver.ts';
import { createFleetModel } from './fleet-models.ts';
import { resolveFleetOptions, type FleetOptions } from './fleet-options.ts';
import { ProvisioningApi, SimulatorError } from './provisioning-api.ts';
import { createRandom } from './random.ts';
import { fleetResult, snapshot, type FleetDeps, type FleetResult, type ProvisioningMode, type Run } from './fleet-run.ts';
import { GcpSimulatedDevice } from './gcp/gcp-device.ts';
import { gcloudExport, gcpIdentity, type GcpBinding } from './gcp/gcp-fleet.ts';
import { runRogues } from './rogues.ts';
import { SimulatedDevice, newCounters } from './simulated-device.ts';
import { TamperingBroker } from './tampering.ts';
import { TelemetryCounter } from './telemetry-counter.ts';

type Input = Pick<FleetOptions, 'httpUrl' | 'mqttUrl' | 'adminToken'> & Partial<FleetOptions> & { provisioning?: ProvisioningMode };

const TICK_MS = 250;
/** The service account sees every device's telemetry (protocol.md §Service accounts). */
const TELEMETRY_FILTER = 'devices/+/telemetry/#';
const PARALLEL_HTTP = 16;

export type { FleetDeps, FleetResult, ProvisioningMode } from './fleet-run.ts';

/**
 * Runs a simulated fleet against a running stack and reports what was measured.
 * Caller misuse (bad options) throws TypeError; a stack that refuses the run (bad admin token,
 * unreachable API) rejects with a coded `SimulatorError`.
 *
 * @example
 * ```ts
 * const { report } = await runFleet({ httpUrl, mqttUrl, adminToken, thermostats: 20, locks: 20, durationS: 10, tokenTtlS: 5, rogue: 3 }, {});
 * console.log(report.telemetry.received === report.telemetry.sent);
 * ```
 */
export async function runFleet(input: Input, deps: FleetDeps = {}): Promise<FleetResult> {
  const o = resolveFleetOptions(input);
  const mode = input.provisioning ?? 'batch';
  if (mode !== 'batch' && mode !== 'enroll') throw new TypeError('provisioning must be batch or enroll');
  const clock = deps.clock ?? Date.now;
  const runId = randomBytes(3).toString('hex');
  const run: Run = {
    o, mode, clock, deps, runId,
    api: new ProvisioningApi({ baseUrl: o.httpUrl, adminToken: o.adminToken, timeoutMs: 60_000 }),
    serviceName: `sim-${runId}`,
    devices: [], provisioned: [], counters: newCounters(), counter: new TelemetryCounter([]),
    service: null, serviceKey: generateDeviceKeyPair(), driver: null, rogues: [], phase: 'provision',
    signed: { verifying: 0, verified: 0, refused: new Map() }, tamperer: null, tampererClient: null,
    ticker: null, startedAt: clock(), firstConnectAt: null, telemetryStoppedAt: null,
  };
  await checkAudience(run);
  try {
    for (const step of [provisionDevices, provisionGcp, registerService, startCounting, startTampering, connectFleet, holdSteadyState, drainTelemetry]) {
      await step(run);
    }
  } finally {
    await shutDown(run);
    if (o.cleanup) await cleanUp(run);
  }
  return fleetResult(run);
}

/**
 * The audience must be one the SDK mints tokens for (its rule, not a copy of it): mint one with the
 * service key before anything is registered, so a bad audience is caller misuse, not a half-done run.
 */
async function checkAudience(run: Run): Promise<void> {
  try {
    await mintConnectToken({ subject: run.serviceName, privateKey: run.serviceKey.privateKey, audience: run.o.audience });
  } catch (e) {
    if (e instanceof TypeError) throw new TypeError(`invalid fleet options: ${e.message}`);
    throw e;
  }
}

/** Keys, models and registration (batch API, or enrollment tokens with proof of possession). */
async function provisionDevices(run: Run): Promise<void> {
  const { o } = run;
  const kinds = [...Array<'thermostat'>(o.thermostats).fill('thermostat'), ...Array<'lock'>(o.locks).fill('lock')];
  let t = 0;
  let l = 0;
  run.devices = kinds.map((kind) => {
    const id = `sim-${run.runId}-${kind === 'thermostat' ? `t${String(++t).padStart(5, '0')}` : `l${String(++l).padStart(5, '0')}`}`;
    const model = createFleetModel(kind, id, { seed: o.seed, intervalS: o.telemetryIntervalS });
    return new SimulatedDevice(id, model, generateDeviceKeyPair().privateKey, run.counters);
  });
  if (run.mode === 'batch') {
    const created = new Set(
      await run.api.createDevices(run.devices.map((d) => ({ id: d.id, publicKey: publicKeyToPem(d.privateKey), metadata: { simulator: run.runId, kind: d.kind } }))),
    );
    run.provisioned = run.devices.filter((d) => created.has(d.id));
    return;
  }
  const enrollmentToken = await run.api.createEnrollmentToken(run.devices.length, 3600);
  const enrolled = await inParallel(
    run.devices,
    PARALLEL_HTTP,
    async (d) => {
      await enroll({ provisioningUrl: o.httpUrl, enrollmentToken, deviceId: d.id, privateKey: d.privateKey, audience: o.audience });
      return d;
    },
    isDeviceClientError,
  );
  run.provisioned = enrolled.filter((d): d is SimulatedDevice => d !== null);
}

/** Cloud IoT Core location of the simulated devices (their registry is the run's own). */
const GCP_LOCATION = 'us-central1';

/**
 * `--gcp`: thermostats that speak the Cloud IoT Core dialect, registered the way a migrating fleet
 * is — a gcloud export of them imported with `POST /v1/import/gcp` (RS256 and ES256 keys alternately).
 */
async function provisionGcp(run: Run): Promise<void> {
  const { o } = run;
  if (o.gcp === 0) return;
  const binding: GcpBinding = { project: o.gcpProject, location: GCP_LOCATION, registry: `sim-${run.runId}` };
  const devices = Array.from({ length: o.gcp }, (_, k) => {
    const id = `sim-${run.runId}-g${String(k + 1).padStart(5, '0')}`;
    const model = createFleetModel('thermostat', id, { seed: o.seed, intervalS: o.telemetryIntervalS });
    return new GcpSimulatedDevice(gcpIdentity(id, k + 1, run.runId), binding, model, run.counters);
  });
  run.devices.push(...devices);
  const result = await run.api.importGcp(gcloudExport(devices.map((d) => d.identity), binding, { simulator: run.runId, kind: 'thermostat' }));
  if (result.imported + result.unchanged === devices.length) run.provisioned.push(...devices);
}

/** A service account of the simulator's own, allowed only to read the fleet's telemetry. */
async function registerService(run: Run): Promise<void> {
  await run.api.createService(run.serviceName, publicKeyToPem(run.serviceKey.privateKey), { publish: [], subscribe: [TELEMETRY_FILTER] });
}

/** A service account of the run (long-lived tokens: it is an instrument or a rogue, not the thing under test). */
function connectService(run: Run, serviceName: string, privateKey: KeyObject): Promise<ServiceClient> {
  const { o } = run;
  return ServiceClient.connect({
    serviceName,
    brokerUrl: o.mqttUrl,
    privateKey,
    audience: o.audience,
    tokenTtlSeconds: o.serviceTokenTtlS,
    connectTimeoutMs: o.connectTimeoutMs,
    clock: run.clock,
    provisioningUrl: o.httpUrl,
  });
}

/** Subscribe (QoS 1, persistent session) before any device connects, so nothing is missed. */
async function startCounting(run: Run): Promise<void> {
  const { o } = run;
  run.counter = new TelemetryCounter(run.provisioned.map((d) => d.id));
  const service = await connectService(run, run.serviceName, run.serviceKey.privateKey);
  run.service = service;
  service.on('error', () => {});
  const handler = o.signed ? (topic: string, payload: Buffer) => verifyAndCount(run, service, topic, payload) : (topic: string, payload: Buffer) => run.counter.handle(topic, payload);
  await service.subscribe(TELEMETRY_FILTER, handler, { qos: 1 });
}

/**
 * A signed fleet's telemetry counts only when it verifies (the device's key history from the API,
 * as the counting service account); a refusal is matched to the tampering rogue's copies.
 */
function verifyAndCount(run: Run, service: ServiceClient, topic: string, payload: Buffer): void {
  const s = run.signed;
  s.verifying++;
  service
    .verifyDeviceMessage(topic, payload)
    .then(
      (m) => {
        s.verified++;
        run.counter.handle(topic, m.payload);
      },
      (err: unknown) => {
        const code = isDeviceMessageError(err) ? err.code : isDeviceClientError(err) ? err.code : 'internal_error';
        if (run.tamperer?.claim(topic, payload) !== true) s.refused.set(code, (s.refused.get(code) ?? 0) + 1);
      },
    )
    .finally(() => s.verifying--);
}

/** The tampering-broker rogue (`tamper` > 0): a service account that reads and re-publishes the fleet's telemetry. */
async function startTampering(run: Run): Promise<void> {
  const { o } = run;
  if (o.tamper === 0) return;
  const name = `${run.serviceName}-tamper`;
  const key = generateDeviceKeyPair();
  await run.api.createService(name, publicKeyToPem(key.privateKey), { publish: [TELEMETRY_FILTER], subscribe: [TELEMETRY_FILTER] });
  const client = await connectService(run, name, key.privateKey);
  run.tampererClient = client;
  client.on('error', () => {});
  const tamperer = new TamperingBroker({ client, privateKey: key.privateKey, deviceIds: run.provisioned.map((d) => d.id), budget: o.tamper });
  run.tamperer = tamperer;
  await client.subscribe(TELEMETRY_FILTER, (topic, payload) => tamperer.handle(topic, payload), { qos: 1 });
}

/** Starts `rampPerS` connects a second; devices simulate from the moment they are connected. */
async function connectFleet(run: Run): Promise<void> {
  const { o, clock } = run;
  run.phase = 'connect';
  run.ticker = setInterval(() => tick(run), TICK_MS);
  const start = clock();
  const gapMs = 1000 / o.rampPerS;
  const connects: Promise<void>[] = [];
  for (const [i, device] of run.provisioned.entries()) {
    if (run.deps.signal?.aborted) break;
    const wait = start + i * gapMs - clock();
    if (wait > 1) await sleep(wait);
    connects.push(
      device
        .connect({ brokerUrl: o.mqttUrl, audience: o.audience, tokenTtlS: o.tokenTtlS, connectTimeoutMs: o.connectTimeoutMs, clock, signed: o.signed })
        .then((ok) => {
          if (ok && run.firstConnectAt === null) run.firstConnectAt = clock();
        }),
    );
  }
  await Promise.all(connects);
}

/** `durationS` of steady state: commands at `commandsPerS`, rogue clients spread over it. */
async function holdSteadyState(run: Run): Promise<void> {
  const { o, clock } = run;
  run.phase = 'steady';
  const rng = createRandom(o.seed ^ 0x5eed);
  run.driver = new CommandDriver({ api: run.api, devices: run.provisioned, ratePerS: o.commandsPerS, timeoutMs: o.commandTimeoutMs, rng, clock });
  run.driver.start();
  const rogues = runRogues(run.o.rogue, run.provisioned.filter((d): d is SimulatedDevice => d.dialect === 'latchkey'), {
    spreadMs: Math.max(0, o.durationS * 1000 - 1000),
    brokerUrl: o.mqttUrl,
    audience: o.audience,
    onResult: (r) => run.rogues.push(r),
    signal: run.deps.signal,
  });
  await sleep(o.durationS * 1000, run.deps.signal);
  run.phase = 'finish';
  await Promise.all([run.driver.stop(), rogues]);
  if (run.ticker !== null) clearInterval(run.ticker);
  run.ticker = null;
  run.telemetryStoppedAt = clock();
}

/** Waits until every publish settled and every sent message was counted, or the drain timeout. */
async function drainTelemetry(run: Run): Promise<void> {
  run.phase = 'drain';
  const deadline = run.clock() + run.o.drainTimeoutMs;
  while (run.clock() < deadline) {
    const tampered = run.tamperer === null || (run.tamperer.settled && run.tamperer.detected >= run.tamperer.published);
    if (run.counters.pendingPublishes === 0 && run.counter.received >= run.counters.telemetrySent && run.signed.verifying === 0 && tampered) return;
    await sleep(50);
  }
}

async function shutDown(run: Run): Promise<void> {
  if (run.ticker !== null) clearInterval(run.ticker);
  run.ticker = null;
  await run.driver?.stop();
  run.telemetryStoppedAt ??= run.clock();
  await Promise.all(run.devices.map((d) => d.close().catch(() => {})));
  await run.service?.close().catch(() => {});
  await run.tampererClient?.close().catch(() => {});
}

/** Deletes what the run registered (a run against a shared stack leaves nothing behind). */
async function cleanUp(run: Run): Promise<void> {
  await inParallel(run.provisioned, PARALLEL_HTTP, (d) => run.api.deleteDevice(d.id), (e) => e instanceof SimulatorError);
  await run.api.deleteService(run.serviceName).catch(() => {});
  if (run.o.tamper > 0) await run.api.deleteService(`${run.serviceName}-tamper`).catch(() => {});
}

function tick(run: Run): void {
  const now = run.clock();
  for (const d of run.provisioned) d.step(now);
  run.deps.onProgress?.(snapshot(run));
}

