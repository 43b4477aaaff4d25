/**
 * `@latchkey/device-sdk` — everything a device (or a backend service account) needs to connect to
 * latchkey: P-256 keys, ES256 connect tokens, zero-touch enrollment, clock correction, and an MQTT
 * client that refreshes its token before expiry without losing a message. docs/sdk.md has the guide.
 *
 * An explicit list (no `export *`): the public surface is pinned by test/sdk/public-api.test.ts.
 */
export { DeviceClient, encodePayload } from './client/device-client.ts';
export type { DeviceClientOptions, TelemetryOptions, SigningOptions, ConfigHandler, ClientEvents } from './client/device-client.ts';
export { ServiceClient } from './client/service-client.ts';
export type { ServiceClientOptions, ServicePublishOptions } from './client/service-client.ts';
export type { ConnectOptions } from './client/connect-options.ts';
export type { TlsOptions, SessionStats as ClientStats } from './session/session.ts';
export type { MessageHandler, MessageMeta } from './messaging/subscription-table.ts';
export type { BackoffOptions } from './session/backoff.ts';
export type { QueueOverflow } from './messaging/offline-queue.ts';
export { CommandError } from './messaging/command-router.ts';
export type { CommandHandler } from './messaging/command-router.ts';
export { DeviceClientError, isDeviceClientError, DEVICE_CLIENT_ERROR_CODES } from './errors.ts';
export type { DeviceClientErrorCode } from './errors.ts';
export { enroll } from './http/enroll.ts';
export type { EnrollOptions, EnrolledDevice } from './http/enroll.ts';
export { fetchClockOffset } from './http/clock-offset.ts';
export type { FetchClockOffsetOptions } from './http/clock-offset.ts';
export { mintConnectToken, mintEnrollProof } from './token/mint-token.ts';
export { signDeviceMessage } from './token/sign-message.ts';
export type { SignDeviceMessageOptions } from './token/sign-message.ts';
export { verifyDeviceMessage, DeviceMessageError, isDeviceMessageError, DEVICE_MESSAGE_ERROR_CODES } from './verify/verify-device-message.ts';
export type { VerifyDeviceMessageOptions, VerifiedDeviceMessage, DeviceMessageErrorCode } from './verify/verify-device-message.ts';
export { ReplayWindow } from './verify/replay-window.ts';
export type { DeviceKeySource, DeviceKeyRecord } from './verify/key-source.ts';
export { RegistryKeySource } from './http/registry-key-source.ts';
export type { RegistryKeySourceOptions } from './http/registry-key-source.ts';
export type { Es256Signer, MintConnectTokenOptions, MintedToken } from './token/mint-token.ts';
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
} from './keys/keys.ts';
export type { DeviceKeyPair, DeviceKeyErrorCode } from './keys/keys.ts';
