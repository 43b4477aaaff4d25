import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../cli/src/admin-client.ts';
import { CliError } from '../../cli/src/cli-error.ts';

/** A server answering every request with the problem document `?code=` names (a newer or a foreign API). */
const server = createServer((req, res) => {
  const code = new URL(req.url ?? '/', 'http://x').searchParams.get('code');
  res.writeHead(409, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: 'x', title: 'T', status: 409, detail: 'a detail', code }));
});
let api: AdminClient;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api = new AdminClient({ baseUrl: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), adminToken: 'a'.repeat(20) });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function failure(route: string): Promise<CliError> {
  try {
    await api.request('GET', route);
  } catch (e) {
    if (e instanceof CliError) return e;
    throw e;
  }
  throw new Error('expected a CliError');
}

describe('AdminClient problem documents (docs/errors.md)', () => {
  it("keeps the API's code when it is one of the API's codes", async () => {
    expect(await failure('/v1/x?code=device_exists')).toMatchObject({ code: 'device_exists', message: 'a detail' });
  });

  it('reports a code it does not know as api_error, naming it', async () => {
    const e = await failure('/v1/x?code=brand_new_code');
    expect(e.code).toBe('api_error');
    expect(e.message).toContain('brand_new_code');
  });
});
