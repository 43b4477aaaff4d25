/**
 * The registry's Cloud IoT Core operations on both backends (plans run by the SQLite and the
 * PostgreSQL runner): the binding in findPrincipal, numId lookup, the config as raw bytes, the
 * config ack of the latest version only, and the binding's cascade on delete.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parseGcpImport } from '../../provisioning/src/import/parse-gcp-import.ts';
import { BACKENDS, registryFixture, type RegistryFixture } from './registry-fixture.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
const numId = '18446744073709551615'; // the largest numId: above 2^53, kept exact as text on both backends
const device = {
  id: 'thermo-1',
  name: `projects/acme-iot/locations/us-central1/registries/fleet-a/devices/${numId}`,
  credentials: [{ publicKey: { format: 'RSA_PEM', key: rsa }, expirationTime: '2031-01-01T00:00:00.123456789Z' }],
  config: { version: '41', binaryData: Buffer.from([0, 1, 0xff]).toString('base64') },
  blocked: true,
  metadata: { site: 'plant-7' },
};

let fx: RegistryFixture | null = null;
afterEach(async () => {
  await fx?.cleanup();
  fx = null;
});

describe.each(BACKENDS)('Cloud IoT Core in the registry (%s)', (backend) => {
  it('imports a device with its binding, numId, blocked, metadata, key expiry and config bytes', async () => {
    fx = await registryFixture(backend);
    const r = fx.registry;
    expect(await r.gcp.import(parseGcpImport([device]), { dryRun: false, actor: 'test' })).toEqual({ imported: 1, unchanged: 0, refused: [], dryRun: false });
    const binding = { project: 'acme-iot', location: 'us-central1', registry: 'fleet-a', numId };
    expect(await r.findPrincipal('thermo-1')).toMatchObject({ kind: 'device', blocked: true, gcp: binding });
    expect((await r.findPrincipal('thermo-1'))?.credentials[0]?.expiresAt).toBe(Date.UTC(2031, 0, 1));
    expect(await r.deviceIdOfNumId(numId)).toBe('thermo-1');
    expect(await r.deviceIdOfNumId('1')).toBeNull();
    expect(await r.findGcpConfig('thermo-1')).toEqual({ version: 41, data: Buffer.from([0, 1, 0xff]) });
    const shown = await r.devices.get('thermo-1');
    expect(shown).toMatchObject({ blocked: true, metadata: { site: 'plant-7' }, gcp: binding, config: { version: 41, deviceAckTime: null } });
    // a native device shows neither a binding nor an ack time
    expect(await r.findPrincipal('nobody')).toBeNull();
  });

  it('records a config ack for the latest version only; a new version clears it', async () => {
    fx = await registryFixture(backend);
    const r = fx.registry;
    await r.gcp.import(parseGcpImport([device]), { dryRun: false, actor: 'test' });
    await r.recordConfigAck('thermo-1', 40, 1_000); // an older version: nothing
    expect((await r.devices.get('thermo-1')).config.deviceAckTime).toBeNull();
    await r.recordConfigAck('thermo-1', 41, 2_000);
    expect((await r.devices.get('thermo-1')).config.deviceAckTime).toBe(2_000);
    expect(await r.configState.setConfig('thermo-1', { mode: 'eco' }, 41, 'test')).toBe(42);
    expect((await r.devices.get('thermo-1')).config).toEqual({ version: 42, deviceAckTime: null });
    expect(await r.findGcpConfig('thermo-1')).toEqual({ version: 42, data: Buffer.from('{"mode":"eco"}') });
    expect(await r.configState.setConfig('thermo-1', { binaryData: 'AAE=' }, undefined, 'test', Buffer.from([0, 1]))).toBe(43);
    expect(await r.findGcpConfig('thermo-1')).toEqual({ version: 43, data: Buffer.from([0, 1]) });
  });

  it('a dry run stores nothing; deleting the device frees its numId', async () => {
    fx = await registryFixture(backend);
    const r = fx.registry;
    expect((await r.gcp.import(parseGcpImport([device]), { dryRun: true, actor: 'test' })).imported).toBe(1);
    expect(await r.devices.exists('thermo-1')).toBe(false);
    await r.gcp.import(parseGcpImport([device]), { dryRun: false, actor: 'test' });
    await r.devices.delete('thermo-1', 'test');
    expect(await r.deviceIdOfNumId(numId)).toBeNull();
    expect(await r.gcp.binding('thermo-1')).toBeNull();
    expect((await r.gcp.import(parseGcpImport([{ ...device, id: 'thermo-2' }]), { dryRun: false, actor: 'test' })).imported).toBe(1);
    expect(await r.deviceIdOfNumId(numId)).toBe('thermo-2');
  });
});
