/**
 * `@latchkey/console` — the operators' web console, served by `latchkey up` at `/console`
 * (docs/console.md). Server-rendered HTML from fastify, one small script, no framework.
 */
export { registerConsole } from './plugin.ts';
export type { ConsoleDeps } from './plugin.ts';
export type { ConsoleBrokerPort } from './context.ts';
export { REFUSAL_WORDS, refusalWords } from './refusal-words.ts';
export { html, raw, escapeHtml, SafeHtml } from './html.ts';
export { SessionStore, DEFAULT_SESSION_LIMITS } from './session.ts';
export type { SessionLimits } from './session.ts';
export { CONTENT_SECURITY_POLICY, SESSION_COOKIE } from './security.ts';
export { loadAssets, ASSET_FILES } from './assets.ts';
