/**
 * A payload as both clients put it on the wire: bytes and strings as they are, anything else as
 * JSON. Throws TypeError for what JSON cannot represent (`undefined`, a function).
 *
 * @example
 * ```ts
 * encodePayload({ celsius: 21.5 }).toString() // '{"celsius":21.5}'
 * ```
 */
export function encodePayload(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  const json = JSON.stringify(data);
  if (json === undefined) throw new TypeError('payload must be bytes, a string or JSON-serializable');
  return Buffer.from(json, 'utf8');
}
