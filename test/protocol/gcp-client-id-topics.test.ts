import { describe, expect, it } from 'vitest';
import {
  canPublish,
  canReceive,
  canSubscribe,
  gcpClientId,
  gcpDeviceTopics,
  isGcpNumId,
  parseGcpClientId,
  toGcpTopic,
  toNativeTopic,
  type TopicPrincipal,
} from '@latchkey/device-sdk/protocol';

const PATH = 'projects/acme-iot/locations/us-central1/registries/plant-7';

describe('parseGcpClientId (protocol.md §Cloud IoT Core client ids)', () => {
  it('reads the path with a device id or a numId', () => {
    expect(parseGcpClientId(`${PATH}/devices/thermo-1`)).toEqual({ project: 'acme-iot', location: 'us-central1', registry: 'plant-7', device: { kind: 'id', deviceId: 'thermo-1' } });
    expect(parseGcpClientId(`${PATH}/devices/2820826361193805`)?.device).toEqual({ kind: 'numId', numId: '2820826361193805' });
    expect(parseGcpClientId(`${PATH}/devices/18446744073709551615`)?.device.kind).toBe('numId');
    expect(parseGcpClientId('projects/my-project-123/locations/europe-west1/registries/Reg_1.a+b~c%d-e/devices/a.b_c-D')).not.toBeNull();
  });

  it.each([
    ['a native device id', 'thermo-1'],
    ['a service client id', 'svc:dashboard'],
    ['an empty string', ''],
    ['too few segments', `${PATH}`],
    ['a trailing slash', `${PATH}/devices/thermo-1/`],
    ['a leading slash', `/${PATH}/devices/thermo-1`],
    ['a wrong literal', `${PATH.replace('registries', 'registry')}/devices/thermo-1`],
    ['an upper-case project', `${PATH.replace('acme-iot', 'Acme-iot')}/devices/thermo-1`],
    ['a project ending in a hyphen', `${PATH.replace('acme-iot', 'acme-iot-')}/devices/thermo-1`],
    ['a short project', `${PATH.replace('acme-iot', 'acme')}/devices/thermo-1`],
    ['a registry starting with a digit', `${PATH.replace('plant-7', '7plant')}/devices/thermo-1`],
    ['a device id outside latchkey’s alphabet', `${PATH}/devices/thermo+1`],
    ['a two-character device id', `${PATH}/devices/ab`],
    ['a numId with a leading zero', `${PATH}/devices/02820826361193805`],
    ['a numId over 2^64 − 1', `${PATH}/devices/18446744073709551616`],
    ['an MQTT wildcard', `${PATH}/devices/#`],
    ['longer than 512 characters', `${PATH.replace('plant-7', `p${'x'.repeat(254)}`)}/devices/${'d'.repeat(64)}`.padEnd(513, 'x')],
  ])('refuses %s', (_what, id) => {
    expect(parseGcpClientId(id)).toBeNull();
  });

  it('gcpClientId builds what parseGcpClientId reads, and refuses parts outside their alphabet', () => {
    const id = gcpClientId({ project: 'acme-iot', location: 'us-central1', registry: 'plant-7', device: '2820826361193805' });
    expect(id).toBe(`${PATH}/devices/2820826361193805`);
    expect(() => gcpClientId({ project: 'acme-iot', location: 'us-central1', registry: 'plant-7', device: 'a/b' })).toThrow(TypeError);
    expect(isGcpNumId('0')).toBe(true);
    expect(isGcpNumId('-1')).toBe(false);
  });
});

describe('the topic mapping both ways (protocol.md §Cloud IoT Core topics)', () => {
  const pairs: [string, string][] = [
    ['/devices/thermo-1/events', 'devices/thermo-1/telemetry'],
    ['/devices/thermo-1/events/alerts', 'devices/thermo-1/telemetry/alerts'],
    ['/devices/thermo-1/events/a/b/c', 'devices/thermo-1/telemetry/a/b/c'],
    ['/devices/thermo-1/state', 'devices/thermo-1/state'],
    ['/devices/thermo-1/config', 'devices/thermo-1/config'],
    ['/devices/thermo-1/commands', 'devices/thermo-1/commands'],
    ['/devices/thermo-1/commands/fw/update', 'devices/thermo-1/commands/fw/update'],
    ['/devices/thermo-1/commands/#', 'devices/thermo-1/commands/#'],
  ];

  it.each(pairs)('%s ↔ %s', (gcp, native) => {
    expect(toNativeTopic(gcp)).toBe(native);
    expect(toGcpTopic(native)).toBe(gcp);
    expect(toGcpTopic(toNativeTopic(gcp)!)).toBe(gcp);
  });

  it('maps nothing outside the four families', () => {
    for (const t of ['devices/thermo-1/events', '/devices/thermo-1/replies/1', '/devices/thermo-1/attach', '/devices//events', '/other/thermo-1/events', '/devices/thermo-1']) {
      expect(toNativeTopic(t), t).toBeNull();
    }
    for (const t of ['/devices/thermo-1/state', 'devices/thermo-1/replies/1', 'devices/thermo-1/events', '$SYS/x']) expect(toGcpTopic(t), t).toBeNull();
  });

  it('gcpDeviceTopics names the topics of one device', () => {
    const g = gcpDeviceTopics('thermo-1');
    expect(g).toMatchObject({ events: '/devices/thermo-1/events', state: '/devices/thermo-1/state', config: '/devices/thermo-1/config', commandsFilter: '/devices/thermo-1/commands/#' });
    expect(g.command()).toBe('/devices/thermo-1/commands');
    expect(g.command('fw')).toBe('/devices/thermo-1/commands/fw');
  });
});

describe('what a Cloud IoT Core device may do (protocol.md §Cloud IoT Core topics)', () => {
  const gcp: TopicPrincipal = { kind: 'device', deviceId: 'thermo-1', dialect: 'gcp' };
  const native: TopicPrincipal = { kind: 'device', deviceId: 'thermo-1' };

  it('publishes its own events (with subfolders) and state, nothing else', () => {
    for (const t of ['/devices/thermo-1/events', '/devices/thermo-1/events/alerts/high', '/devices/thermo-1/state']) expect(canPublish(gcp, t), t).toBe(true);
    for (const t of [
      '/devices/thermo-2/events',
      '/devices/thermo-1/events/',
      '/devices/thermo-1/events//x',
      '/devices/thermo-1/state/x',
      '/devices/thermo-1/config',
      '/devices/thermo-1/commands/x',
      '/devices/thermo-1/attach',
      '/devices/thermo-1/replies/1',
      'devices/thermo-1/telemetry',
      '$SYS/x',
    ]) {
      expect(canPublish(gcp, t), t).toBe(false);
    }
  });

  it('subscribes to exactly its config and its commands/#', () => {
    expect(canSubscribe(gcp, '/devices/thermo-1/config')).toBe(true);
    expect(canSubscribe(gcp, '/devices/thermo-1/commands/#')).toBe(true);
    for (const f of ['/devices/thermo-1/commands', '/devices/thermo-1/commands/fw', '/devices/thermo-1/commands/+', '/devices/thermo-2/config', '/devices/+/config', '#', 'devices/thermo-1/config', '/devices/thermo-1/#']) {
      expect(canSubscribe(gcp, f), f).toBe(false);
    }
  });

  it('receives its config and any command under /commands, nothing else', () => {
    for (const t of ['/devices/thermo-1/config', '/devices/thermo-1/commands', '/devices/thermo-1/commands/fw/1']) expect(canReceive(gcp, t), t).toBe(true);
    for (const t of ['/devices/thermo-2/config', 'devices/thermo-1/config', '/devices/thermo-1/events']) expect(canReceive(gcp, t), t).toBe(false);
  });

  it('a native device is unchanged: its rules do not admit the Cloud IoT Core topics', () => {
    expect(canPublish(native, '/devices/thermo-1/events')).toBe(false);
    expect(canSubscribe(native, '/devices/thermo-1/config')).toBe(false);
    expect(canReceive(native, 'devices/thermo-1/commands/x')).toBe(true);
  });
});
