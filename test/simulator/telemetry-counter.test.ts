import { describe, expect, it } from 'vitest';
import { TelemetryCounter } from '../../simulator/src/telemetry-counter.ts';

describe('TelemetryCounter', () => {
  it('counts unique (device, seq) pairs on telemetry topics and subtopics', () => {
    const c = new TelemetryCounter(['t-1', 'l-1']);
    c.handle('devices/t-1/telemetry', JSON.stringify({ seq: 1, temperature: 21 }));
    c.handle('devices/t-1/telemetry', Buffer.from(JSON.stringify({ seq: 2 })));
    c.handle('devices/l-1/telemetry/events', JSON.stringify({ seq: 1, event: 'doorOpened' }));
    c.handle('devices/t-1/telemetry', JSON.stringify({ seq: 1 })); // QoS 1 redelivery
    expect(c.received).toBe(3);
    expect(c.duplicates).toBe(1);
    expect(c.receivedFrom('t-1')).toBe(2);
    expect(c.receivedFrom('l-1')).toBe(1);
  });

  it('ignores other devices, other topics and payloads without a usable seq, never throws', () => {
    const c = new TelemetryCounter(['t-1']);
    for (const [topic, payload] of [
      ['devices/other/telemetry', '{"seq":1}'],
      ['devices/t-1/state', '{"seq":1}'],
      ['devices/t-1/telemetryx', '{"seq":1}'],
      ['devices/t-1/telemetry', 'not json'],
      ['devices/t-1/telemetry', '{"seq":"1"}'],
      ['devices/t-1/telemetry', '{"seq":1.5}'],
      ['devices/t-1/telemetry', '{"seq":-1}'],
      ['devices/t-1/telemetry', 'null'],
      ['devices/t-1/telemetry', '[1]'],
    ] as const) {
      c.handle(topic, payload);
    }
    expect(c.received).toBe(0);
    expect(c.ignored).toBe(9);
  });
});
