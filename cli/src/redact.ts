/**
 * Removes anything that looks like a secret from text about to be printed: JWS compact tokens
 * (connect, enrollment proof), PEM blocks and bearer credentials. House rule: tokens, private keys
 * and the admin token never reach a log line or an error.
 *
 * @example
 * ```ts
 * redactSecrets('bad token eyJhbGciOi.eyJzdWIi.c2ln') // 'bad token [redacted]'
 * ```
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g, '[redacted]')
    .replace(/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*)?/g, '[redacted]')
    .replace(/(bearer\s+)\S+/gi, '$1[redacted]');
}
