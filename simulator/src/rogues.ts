/**
 * Rogue clients: connects that present credentials the broker must refuse (CONNACK 4/5,
 * protocol.md §MQTT CONNECT). They use the SDK like any device, so a refusal surfaces as a coded
 * `DeviceClientError`; one that connects has got in and fails the run.
 */
import type { KeyObject } from 'node:crypto';
import { DeviceClient, generateDeviceKeyPair, isDeviceClientError } from '@latchkey/device-sdk';
import { sleep } from './async-tools.ts';
import { AUTH_REFUSALS } from './simulated-device.ts';

/**
 * - `forged`: a real device's id, a token signed by a key the registry never saw;
 * - `expired`: a real device's id and key, a token that expired a day ago;
 * - `cross-device`: a real device's id, a token signed with another registered device's key.
 */
export const ROGUE_KINDS = ['forged', 'expired', 'cross-device'] as const;
export type RogueKind = (typeof ROGUE_KINDS)[number];

export interface RogueTarget {
  id: string;
  privateKey: KeyObject;
}

export interface RogueResult {
  kind: RogueKind;
  refused: boolean;
  /** The error code the SDK surfaced (`bad_credentials`, `not_authorized`, ...), or `admitted`. */
  code: string;
}

const DAY_MS = 86_400_000;
const ROGUE_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Attempts one rogue connect as `victim`; `other` is another device of the fleet.
 *
 * @example
 * ```ts
 * const r = await attemptRogue('expired', victim, other, { brokerUrl, audience: 'latchkey', connectTimeoutMs: 10_000 });
 * if (!r.refused) console.error('a rogue got in');
 * ```
 */
export async function attemptRogue(
  kind: RogueKind,
  victim: RogueTarget,
  other: RogueTarget,
  o: { brokerUrl: string; audience: string; connectTimeoutMs: number },
): Promise<RogueResult> {
  const base = { deviceId: victim.id, brokerUrl: o.brokerUrl, audience: o.audience, connectTimeoutMs: o.connectTimeoutMs };
  const options =
    kind === 'forged'
      ? { ...base, privateKey: generateDeviceKeyPair().privateKey }
      : kind === 'expired'
        ? // iat two days back, exp one day back: beyond any clock tolerance, within the max lifetime.
          { ...base, privateKey: victim.privateKey, tokenTtlSeconds: 86_400, clockOffsetMs: -2 * DAY_MS }
        : { ...base, privateKey: other.privateKey };
  let client: DeviceClient;
  try {
    client = await DeviceClient.connect(options);
  } catch (err) {
    const code = isDeviceClientError(err) ? err.code : 'internal_error';
    return { kind, refused: (AUTH_REFUSALS as readonly string[]).includes(code), code };
  }
  await client.close();
  return { kind, refused: false, code: 'admitted' };
}

/**
 * Attempts `n` rogue connects spread evenly over `spreadMs`, cycling through the kinds and the
 * fleet's devices as victims; each result goes to `onResult` as it settles. When `signal` aborts,
 * the attempts still waiting start at once (every rogue is still tried and reported).
 *
 * @example
 * ```ts
 * await runRogues(6, devices, { spreadMs: 5_000, brokerUrl, audience: 'latchkey', onResult: (r) => results.push(r) });
 * ```
 */
export async function runRogues(
  n: number,
  targets: readonly RogueTarget[],
  o: { spreadMs: number; brokerUrl: string; audience: string; onResult: (r: RogueResult) => void; signal?: AbortSignal },
): Promise<void> {
  if (n === 0 || targets.length < 2) return;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      await sleep((o.spreadMs * i) / n, o.signal);
      const victim = targets[i % targets.length]!;
      const other = targets[(i + 1) % targets.length]!;
      const kind = ROGUE_KINDS[i % ROGUE_KINDS.length]!;
      o.onResult(await attemptRogue(kind, victim, other, { brokerUrl: o.brokerUrl, audience: o.audience, connectTimeoutMs: ROGUE_CONNECT_TIMEOUT_MS }));
    }),
  );
}
