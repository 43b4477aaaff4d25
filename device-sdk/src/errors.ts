/**
 * The one error class of the device SDK's client side (connect, publish, subscribe, enroll),
 * with a stable string `code`. Wire-contract violations stay `ProtocolError` (protocol/errors.ts);
 * both extend the protocol core's `CodedError`.
 * Every code is documented in docs/sdk.md §Error codes; a test keeps the table and this list equal.
 */
import { CodedError, isCodedError } from './protocol/index.ts';

/** Codes of a refused or lost connection (protocol.md §MQTT CONNECT). */
export const CONNECTION_ERROR_CODES = [
  'identifier_rejected', // CONNACK 2: the client id is not a valid device or service client id
  'bad_credentials', // CONNACK 4: unknown device, bad signature, expired or wrong-audience token, ...
  'not_authorized', // CONNACK 5: device blocked, or the source address is throttled
  'protocol_rejected', // CONNACK 1: the broker does not speak MQTT 3.1.1
  'connect_timeout', // no session established within `connectTimeoutMs`
  'signing_failed', // the private key or `sign()` could not produce a token
  'closed', // the client was closed (by `close()` or after a fatal refusal)
] as const;

/** Codes of a publish or subscribe that did not happen. */
export const MESSAGING_ERROR_CODES = [
  'queue_full', // offline queue at `maxQueuedMessages` with `queueOverflow: 'reject'`
  'message_dropped', // evicted from a full offline queue (`queueOverflow: 'drop-oldest'`)
  'payload_too_large', // the PUBLISH would exceed `maxPacketSize` (the broker would close the connection)
  'subscribe_denied', // SUBACK 0x80: the filter is outside this principal's ACL
  'publish_refused', // the broker closed the connection each time this message was delivered (outside the ACL)
  'publish_failed', // the MQTT client reported a failure for this message
] as const;

/**
 * Codes of the provisioning HTTP API (errors.md §HTTP API) that `enroll()` and `fetchClockOffset()`
 * surface as they are, plus the SDK's own transport codes.
 */
export const HTTP_ERROR_CODES = [
  'enrollment_token_invalid',
  'proof_invalid',
  'device_exists',
  'key_in_use',
  'invalid_device_id',
  'invalid_public_key',
  'private_key_rejected',
  'unsupported_key_type',
  'unsupported_curve',
  'validation_failed',
  'rate_limited',
  'unauthorized', // the API refused the service account's API token (RegistryKeySource)
  'http_error', // any other non-2xx answer (see `status`)
  'network_error', // no answer: refused, reset, DNS, timeout
  'invalid_response', // an answer that is not the documented JSON
] as const;

export type ConnectionErrorCode = (typeof CONNECTION_ERROR_CODES)[number];
export type MessagingErrorCode = (typeof MESSAGING_ERROR_CODES)[number];
export type HttpErrorCode = (typeof HTTP_ERROR_CODES)[number];
export type DeviceClientErrorCode = ConnectionErrorCode | MessagingErrorCode | HttpErrorCode;

/** Every code a {@link DeviceClientError} can carry. */
export const DEVICE_CLIENT_ERROR_CODES: readonly DeviceClientErrorCode[] = Object.freeze([
  ...CONNECTION_ERROR_CODES,
  ...MESSAGING_ERROR_CODES,
  ...HTTP_ERROR_CODES,
]);

/**
 * A client-side failure with a stable `code`. `message` never contains a token or key.
 * `status` is set for HTTP answers, `returnCode` for CONNACK refusals.
 *
 * @example
 * ```ts
 * try {
 *   await DeviceClient.connect(opts);
 * } catch (e) {
 *   if (e instanceof DeviceClientError && e.code === 'not_authorized') console.error('device is blocked');
 * }
 * ```
 */
export class DeviceClientError extends CodedError<DeviceClientErrorCode> {
  override readonly name = 'DeviceClientError';
  /** HTTP status, when the error came from the provisioning API. */
  readonly status: number | undefined;
  /** CONNACK return code, when the broker refused the connection. */
  readonly returnCode: number | undefined;
  constructor(
    code: DeviceClientErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number; returnCode?: number },
  ) {
    super(code, message, options);
    this.status = options?.status;
    this.returnCode = options?.returnCode;
  }
}

/**
 * Type guard: `e` is a DeviceClientError, optionally with one of `codes`.
 *
 * @example
 * ```ts
 * if (isDeviceClientError(err, 'bad_credentials', 'not_authorized')) stopForGood();
 * ```
 */
export function isDeviceClientError<C extends DeviceClientErrorCode>(
  e: unknown,
  ...codes: C[]
): e is DeviceClientError & { code: C } {
  return isCodedError(e, DeviceClientError, codes);
}

/** protocol.md §MQTT CONNECT: the CONNACK refusals after which retrying cannot help. */
const FATAL_CONNACK: Readonly<Record<number, ConnectionErrorCode>> = Object.freeze({
  1: 'protocol_rejected',
  2: 'identifier_rejected',
  4: 'bad_credentials',
  5: 'not_authorized',
});

/** The coded refusal an mqtt.js connection error stands for, when it is a CONNACK retrying cannot fix; else null. */
export function fatalRefusal(err: Error): DeviceClientError | null {
  const rc = (err as { code?: unknown }).code;
  const code = typeof rc === 'number' ? FATAL_CONNACK[rc] : undefined;
  return code === undefined ? null : new DeviceClientError(code, `the broker refused the connection (CONNACK ${rc})`, { returnCode: rc as number });
}
