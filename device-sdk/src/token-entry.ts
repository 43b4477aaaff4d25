/**
 * `@latchkey/device-sdk/token` — device keys and connect tokens without the MQTT client: what a
 * script, a backend or `latchkey token` needs to mint a token, loading a few small modules instead
 * of the whole SDK. The same functions as the main entry (`@latchkey/device-sdk`) exports.
 *
 * An explicit list (no `export *`): pinned by test/sdk/public-api.test.ts.
 */
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
/** The rules a token's subject and audience follow (the protocol core's, re-exported). */
export { isPrincipal } from './protocol/ids.ts';
export { DEFAULT_TOKEN_RULES } from './protocol/limits.ts';
