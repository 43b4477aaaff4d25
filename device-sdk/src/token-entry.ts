/**
 * `@latchkey/device-sdk/token` — device keys and connect tokens without the MQTT client: what a
 * script, a backend or `latchkey token` needs to mint a token, loading a few small modules instead
 * of the whole SDK. The same functions as the main entry (`@latchkey/device-sdk`) exports.
 *
 * An explicit list (no `export *`): pinned by test/sdk/public-api.test.ts.
 */
export { mintConnectToken, mintEnrollProof } from './token/mint-token.ts';
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
/**
 * The rules a token's subject, audience and `kid` follow (the protocol core's, re-exported from its
 * modules, not its index: no verifier is loaded), so a caller can refuse what the broker would.
 */
export { DEVICE_ID_PATTERN, isPrincipal } from './protocol/ids.ts';
export { DEFAULT_TOKEN_RULES, MAX_AUDIENCE_LENGTH, MAX_KID_LENGTH } from './protocol/limits.ts';
export { isAudience } from './protocol/claims.ts';
export { isKid } from './protocol/token-header.ts';
