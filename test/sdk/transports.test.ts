import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceClient } from '@latchkey/device-sdk';
import { localhostServerCertificate } from '../helpers/certs.ts';
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;
let caPem: string;

beforeAll(async () => {
  // a self-signed server certificate for 127.0.0.1, made with the openssl CLI
  const tls = localhostServerCertificate();
  caPem = tls.certPem;
  stack = await startStack({ mqttsPort: 0, wsPort: 0, tlsCert: tls.certPem, tlsKey: tls.keyPem });
});

afterAll(async () => {
  await stack.close();
});

describe('transports', () => {
  it('mqtts:// with the broker certificate as CA', async () => {
    const d = await stack.device('thermo-tls');
    const port = stack.broker.addresses.mqtts?.port as number;
    const client = await DeviceClient.connect({ deviceId: 'thermo-tls', brokerUrl: `mqtts://127.0.0.1:${port}`, privateKey: d.privateKey, tls: { ca: caPem } });
    await client.publishTelemetry({ ok: true });
    await client.close();
  });

  it('mqtts:// refuses an untrusted certificate (retried until connect_timeout, the TLS error as cause)', async () => {
    const d = await stack.device('thermo-tls2');
    const port = stack.broker.addresses.mqtts?.port as number;
    const err = await DeviceClient.connect({
      deviceId: 'thermo-tls2',
      brokerUrl: `mqtts://127.0.0.1:${port}`,
      privateKey: d.privateKey,
      connectTimeoutMs: 500,
      backoff: { initialMs: 50, maxMs: 100 },
    }).then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'connect_timeout' });
    expect(String((err as { cause?: { code?: string } }).cause?.code)).toMatch(/CERT|SELF_SIGNED/);
  });

  it('ws:// (MQTT over WebSocket)', async () => {
    const d = await stack.device('thermo-ws');
    const port = stack.broker.addresses.ws?.port as number;
    const client = await DeviceClient.connect({ deviceId: 'thermo-ws', brokerUrl: `ws://127.0.0.1:${port}/mqtt`, privateKey: d.privateKey });
    await client.reportState({ via: 'ws' });
    await client.close();
  });
});
