import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandError, DeviceClient, ServiceClient } from '@latchkey/device-sdk';
import { closeAll, sleep, startStack, waitFor, type Stack } from './helpers/stack.ts';

let stack: Stack;
let backend: ServiceClient;
let device: DeviceClient;
const closers: (() => Promise<unknown>)[] = [];
const replies = new Map<string, unknown[]>();

beforeEach(async () => {
  stack = await startStack();
  const d = await stack.device('lock-1');
  const b = await stack.service('backend', {
    publish: ['devices/+/commands/#', 'devices/+/config'],
    subscribe: ['devices/+/replies/+', 'devices/+/state'],
  });
  backend = await ServiceClient.connect({ serviceName: 'backend', brokerUrl: stack.brokerUrl, privateKey: b.privateKey });
  closers.push(() => backend.close());
  replies.clear();
  await backend.subscribe('devices/+/replies/+', (topic, payload) => {
    const id = topic.split('/')[3] as string;
    replies.set(id, [...(replies.get(id) ?? []), JSON.parse(payload.toString())]);
  });
  device = await DeviceClient.connect({ deviceId: 'lock-1', brokerUrl: stack.brokerUrl, privateKey: d.privateKey });
  closers.push(() => device.close());
});

afterEach(async () => {
  await closeAll(closers);
  await stack.close();
});

const command = (name: string, id: string, params: unknown) => backend.publish(`devices/lock-1/commands/${name}`, { id, params });

describe('onCommand', () => {
  it("runs the handler and replies {ok:true,result} on devices/{id}/replies/{commandId}", async () => {
    const seen: unknown[] = [];
    await device.onCommand('unlock', async (params, ctx) => {
      seen.push([params, ctx]);
      return { unlocked: true };
    });
    await command('unlock', 'c-1', { door: 'front' });
    await waitFor(() => replies.has('c-1'));
    expect(replies.get('c-1')).toEqual([{ ok: true, result: { unlocked: true } }]);
    expect(seen).toEqual([[{ door: 'front' }, { id: 'c-1', name: 'unlock' }]]);
  });

  it('replies {ok:false,error} with a CommandError message; other errors stay on the device', async () => {
    const handlerErrors: unknown[] = [];
    device.on('handler-error', (e) => handlerErrors.push(e));
    await device.onCommand('jam', () => {
      throw new CommandError('bolt jammed');
    });
    await device.onCommand('crash', () => {
      throw new Error('secret internal detail at 0xdeadbeef');
    });
    await command('jam', 'c-2', {});
    await command('crash', 'c-3', {});
    await waitFor(() => replies.has('c-2') && replies.has('c-3'));
    expect(replies.get('c-2')).toEqual([{ ok: false, error: 'bolt jammed' }]);
    expect(replies.get('c-3')).toEqual([{ ok: false, error: 'command failed' }]);
    expect(handlerErrors).toHaveLength(1);
  });

  it('a redelivered command id runs once and its reply is sent again; malformed commands are ignored', async () => {
    let runs = 0;
    await device.onCommand('beep', () => ++runs);
    await command('beep', 'c-4', {});
    await waitFor(() => replies.has('c-4'));
    await command('beep', 'c-4', {});
    await waitFor(() => (replies.get('c-4')?.length ?? 0) === 2);
    expect(runs).toBe(1);
    expect(replies.get('c-4')).toEqual([
      { ok: true, result: 1 },
      { ok: true, result: 1 },
    ]);
    await backend.publish('devices/lock-1/commands/beep', 'not json');
    await backend.publish('devices/lock-1/commands/beep', { id: 'a/b', params: {} });
    await command('beep', 'c-5', {});
    await waitFor(() => replies.has('c-5'));
    expect(runs).toBe(2);
    expect([...replies.keys()].sort()).toEqual(['c-4', 'c-5']);
  });

  it('refuses misuse: a bad name, a second handler for one name', async () => {
    await device.onCommand('open', () => null);
    await expect(device.onCommand('open', () => null)).rejects.toBeInstanceOf(TypeError);
    await expect(device.onCommand('a/b', () => null)).rejects.toBeInstanceOf(TypeError);
    await expect(device.onCommand('#', () => null)).rejects.toBeInstanceOf(TypeError);
    await device.close();
    await expect(device.onCommand('late', () => null)).rejects.toMatchObject({ code: 'closed' });
    await expect(device.onConfig(() => undefined)).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('onConfig and reportState', () => {
  it('delivers the retained config on subscribe, then every newer version; stale versions are ignored', async () => {
    await backend.publish('devices/lock-1/config', { version: 1, config: { autoLock: false } }, { retain: true });
    const got: unknown[] = [];
    await device.onConfig((config, { version }) => void got.push([version, config]));
    await waitFor(() => got.length === 1);
    await backend.publish('devices/lock-1/config', { version: 2, config: { autoLock: true } }, { retain: true });
    await waitFor(() => got.length === 2);
    await backend.publish('devices/lock-1/config', { version: 1, config: { autoLock: false } }, { retain: true });
    await backend.publish('devices/lock-1/config', 'garbage', { retain: true });
    await backend.publish('devices/lock-1/config', { version: 3, config: { autoLock: 'night' } }, { retain: true });
    await waitFor(() => got.length === 3);
    await sleep(50);
    expect(got).toEqual([
      [1, { autoLock: false }],
      [2, { autoLock: true }],
      [3, { autoLock: 'night' }],
    ]);
    await expect(device.onConfig(() => undefined)).rejects.toBeInstanceOf(TypeError);
  });

  it('reportState reaches devices/{id}/state and the registry keeps it', async () => {
    const states: unknown[] = [];
    await backend.subscribe('devices/+/state', (_t, p) => void states.push(JSON.parse(p.toString())));
    await device.reportState({ locked: true, battery: 0.82 });
    await waitFor(() => states.length === 1);
    expect(states).toEqual([{ locked: true, battery: 0.82 }]);
  });

  it('a service subscription outside its ACL is refused (subscribe_denied) without disturbing others', async () => {
    await expect(backend.subscribe('devices/+/telemetry', () => undefined)).rejects.toMatchObject({ code: 'subscribe_denied' });
    await device.onCommand('still', () => 'works');
    await command('still', 'c-7', {});
    await waitFor(() => replies.has('c-7'));
  });
});
