import { expect } from 'vitest';
import { ProtocolError, type ProtocolErrorCode } from '../../device-sdk/src/protocol/errors.ts';

/**
 * What a protocol-core call says: `'accepted'` when it returns, else its ProtocolError's code; any
 * other error fails the test.
 *
 * @example
 * ```ts
 * expect(protocolCodeOf<KeyErrorCode>(() => parsePublicKey(pem))).toBe('unsupported_curve');
 * ```
 */
export function protocolCodeOf<C extends ProtocolErrorCode = ProtocolErrorCode>(fn: () => unknown): C | 'accepted' {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return (e as ProtocolError<C>).code;
  }
}
