import type { FastifyInstance, FastifyRequest } from 'fastify';
import { assertDeviceId, type ParsedPublicKey } from '@latchkey/device-sdk/protocol';
import { checkEnrollmentProof } from '../../enrollment/enrollment-proof.ts';
import { readEnrollmentToken } from '../../enrollment/enrollment-token.ts';
import { isRegistryError, type DeviceRecord } from '../../registry/index.ts';
import { bearerToken } from '../admin-token.ts';
import { ApiError } from '../api-error.ts';
import { readPublicKey } from '../device-input.ts';
import type { RouteDeps } from '../route-deps.ts';
import { deviceIdSchema, deviceSchema, publicKeySchema, responses } from '../schemas.ts';

interface EnrollBody {
  deviceId: string;
  publicKey: unknown;
  proof: string;
}

type PresentedToken = { tokenId: string; secretHash: Buffer };

/**
 * api.md §Zero-touch enrollment (device side), as named steps:
 * [admitToken (onRequest, before the body is read), parseDeviceId, parseKey, verifyProof, register].
 * The token is checked first so that an unauthenticated caller learns nothing else and costs no
 * body parsing; the registration re-checks it and consumes one use in the same transaction.
 * Throttling (docs/operations.md §Throttles): a valid token is never throttled. A refused token
 * counts against the source address and against the token id it names; once either budget is
 * used up, refused tokens get 429 instead of 401 until the window ends.
 */
export function enrollRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry, clock, config, throttles } = deps;
  const admitted = new WeakMap<FastifyRequest, PresentedToken>();

  const isUsable = async (presented: PresentedToken): Promise<boolean> => {
    try {
      await registry.enrollment.check(presented.tokenId, presented.secretHash);
      return true;
    } catch (e) {
      if (isRegistryError(e, 'enrollment_token_invalid')) return false;
      throw e;
    }
  };
  const admitToken = async (request: FastifyRequest): Promise<void> => {
    const presented = readEnrollmentToken(bearerToken(request.headers.authorization));
    if (presented !== null && (await isUsable(presented))) {
      admitted.set(request, presented);
      return;
    }
    const address = request.ip;
    if (throttles.enrollByAddress.blocked(address) || (presented !== null && throttles.enrollByToken.blocked(presented.tokenId))) {
      throw new ApiError('rate_limited');
    }
    throttles.enrollByAddress.fail(address);
    if (presented !== null) throttles.enrollByToken.fail(presented.tokenId);
    throw new ApiError('enrollment_token_invalid');
  };
  const verifyProof = (body: EnrollBody, deviceId: string, key: ParsedPublicKey, now: number): void => {
    const reason = checkEnrollmentProof(body.proof, { key: key.key, deviceId, audience: config.audience, clockTolerance: config.clockTolerance, now });
    if (reason !== null) throw new ApiError('proof_invalid', `the proof was refused: ${reason}`);
  };

  app.post<{ Body: EnrollBody }>(
    '/v1/enroll',
    {
      onRequest: admitToken,
      schema: {
        summary: 'Enroll a device with an enrollment token and a proof of possession of its key',
        description:
          'Authorization: Bearer <enrollment token>. `proof` is an ES256 JWT signed by the new private key with sub = deviceId, ' +
          'aud = "<audience>:enroll", iat and exp (exp − iat ≤ 300 s).',
        tags: ['enrollment'],
        security: [{ enrollmentToken: [] }],
        body: {
          type: 'object',
          properties: { deviceId: deviceIdSchema, publicKey: publicKeySchema, proof: { type: 'string', minLength: 1, maxLength: 4096 } },
          required: ['deviceId', 'publicKey', 'proof'],
          additionalProperties: false,
        },
        response: responses({ 201: deviceSchema }, [400, 401, 403, 409, 413, 415, 429]),
      },
    },
    async (request, reply) => {
      const token = admitted.get(request) as PresentedToken;
      const now = clock();
      const deviceId = assertDeviceId(request.body.deviceId);
      const key = readPublicKey(request.body.publicKey, now);
      verifyProof(request.body, deviceId, key, now);
      const device: DeviceRecord = await registry.enrollment.enroll(token.tokenId, token.secretHash, { id: deviceId, key });
      request.log.info({ deviceId, tokenId: token.tokenId }, 'device enrolled');
      return reply.code(201).send(device);
    },
  );
}
