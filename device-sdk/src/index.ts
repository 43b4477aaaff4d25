/**
 * `@latchkey/device-sdk` — everything a device (or a backend service account) needs to connect to
 * latchkey: P-256 keys, ES256 connect tokens, zero-touch enrollment, clock correction, and an MQTT
 * client that refreshes its token before expiry without losing a message. docs/sdk.md has the guide.
 *
 * An explicit list (no `export *`): the public surface is pinned by test/sdk/public-api.test.ts.
 */
export { DeviceClient, encodePayload } from './device-client.ts';
export type { DeviceClientOptions, TelemetryOptions, ConfigHandler, ClientEvents } from './device-client.ts';
export { ServiceClient } from './service-client.ts';
export type { ServiceClientOptions, ServicePublishOptions } from './service-client.ts';
export type { ConnectOptions } from './connect-options.ts';
export type { TlsOptions, SessionStats as ClientStats } from './session.ts';
export type { MessageHandler, MessageMeta } from './subscription-table.ts';
export type { BackoffOptions } from './backoff.ts';
export type { QueueOverflow } from './offline-queue.ts';
export { CommandError } from './command-router.ts';
export type { CommandHandler } from './command-router.ts';
export { DeviceClientError, isDeviceClientError, DEVICE_CLIENT_ERROR_CODES } from './errors.ts';
export type { DeviceClientErrorCode } from './errors.ts';
export { enroll } from './enroll.ts';
export type { EnrollOptions, EnrolledDevice } from './enroll.ts';
export { fetchClockOffset } from './clock-offset.ts';
export type { FetchClockOffsetOptions } from './clock-offset.ts';
export { mintConnectToken, mintEnrollProof } from './mint-token.ts';
export type { Es256Signer, MintConnectTokenOptions, MintedToken } from './mint-token.ts';
export {
  generateDeviceKeyPair,
  privateKeyToPem,
  publicKeyToPem,
  saveKeyPair,
  loadPrivateKey,
  loadPrivateKeyPem,
  DeviceKeyError,
  PRIVATE_KEY_FILE,
  PUBLIC_KEY_FILE,
} from './keys.ts';
export type { DeviceKeyPair, DeviceKeyErrorCode } from './keys.ts';
