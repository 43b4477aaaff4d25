/**
 * The Cloud IoT Core part of a fleet (`--gcp <n>`): key pairs (RS256 and ES256 alternately, as
 * Cloud IoT Core fleets had both), the gcloud JSON export the simulator imports them with
 * (`POST /v1/import/gcp`), and their binding.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { GcpAlgorithm } from './gcp-token.ts';

/** Where the simulated devices were "registered in Cloud IoT Core". */
export interface GcpBinding {
  project: string;
  location: string;
  registry: string;
}

export interface GcpIdentity {
  id: string;
  /** a 16-digit numId, as Cloud IoT Core gave */
  numId: string;
  algorithm: GcpAlgorithm;
  privateKey: KeyObject;
  publicKeyPem: string;
}

/** The `i`-th device's identity (1-based): RSA 2048 for odd `i`, P-256 for even. */
export function gcpIdentity(id: string, i: number, runId: string): GcpIdentity {
  const algorithm: GcpAlgorithm = i % 2 === 1 ? 'RS256' : 'ES256';
  const pair = algorithm === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // 16 digits, as Cloud IoT Core's were, unique per run: 2, six from the run id, nine from the index
  const numId = `2${String(parseInt(runId, 16) % 1_000_000).padStart(6, '0')}${String(i).padStart(9, '0')}`;
  return { id, numId, algorithm, privateKey: pair.privateKey, publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

/** A gcloud-style export of these devices (what `gcloud iot devices list --format=json` printed). */
export function gcloudExport(devices: readonly GcpIdentity[], b: GcpBinding, metadata: Record<string, string>): unknown[] {
  return devices.map((d) => ({
    id: d.id,
    name: `projects/${b.project}/locations/${b.location}/registries/${b.registry}/devices/${d.numId}`,
    numId: d.numId,
    credentials: [{ publicKey: { format: d.algorithm === 'RS256' ? 'RSA_PEM' : 'ES256_PEM', key: d.publicKeyPem }, expirationTime: '1970-01-01T00:00:00Z' }],
    config: { version: '1' },
    metadata,
  }));
}
