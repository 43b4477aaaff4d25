/**
 * protocol.md §Signed messages at the broker: the device metadata member `signedTelemetry:
 * "required"` makes the broker require signed messages on the device's telemetry topics.
 *
 * @example
 * ```ts
 * requiresSignedTelemetry({ signedTelemetry: 'required' }) // true
 * ```
 */
export function requiresSignedTelemetry(metadata: unknown): boolean {
  return typeof metadata === 'object' && metadata !== null && (metadata as { signedTelemetry?: unknown }).signedTelemetry === 'required';
}
