import { describe, expect, it } from 'vitest';
import { sdkClosure } from '../../bench/sdk-closure.ts';

describe('bench/sdk-footprint: the SDK dependency closure', () => {
  it('walks the SDK, jose, mqtt and mqtt dependencies, each installed copy once, and nothing of the server', () => {
    const closure = sdkClosure();
    const names = closure.map((p) => p.name);
    expect(names[0]).toBe('@latchkey/device-sdk');
    for (const n of ['jose', 'mqtt', 'mqtt-packet', 'ws']) expect(names).toContain(n);
    for (const n of ['aedes', 'fastify', 'better-sqlite3', 'pino', '@latchkey/broker']) expect(names).not.toContain(n);
    expect(new Set(closure.map((p) => p.dir)).size).toBe(closure.length);
    expect(new Set(closure.map((p) => `${p.name}@${p.version}`)).size).toBe(closure.length);
    for (const p of closure) expect(p.bytes).toBeGreaterThan(0);
  });
});
