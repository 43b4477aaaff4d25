import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

export interface Asset {
  /** `/console/assets/console.1a2b3c4d.js` */
  readonly url: string;
  readonly type: string;
  readonly body: Buffer;
  readonly gzip: Buffer;
}

const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** The hand-written files in console/assets/ (next to src/ and to a compiled dist/). */
export const ASSET_FILES = ['console.js', 'console.css'] as const;

/**
 * Loads the console's own script and style sheet once, named by their content hash so they can be
 * cached as immutable; served precompressed. Every asset is local: the console works offline.
 */
export function loadAssets(dir: URL = new URL('../assets/', import.meta.url)): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const file of ASSET_FILES) {
    const body = readFileSync(new URL(file, dir));
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 8);
    const [base, ext] = file.split('.') as [string, string];
    const name = `${base}.${hash}.${ext}`;
    out.set(name, { url: `/console/assets/${name}`, type: TYPES[ext]!, body, gzip: gzipSync(body, { level: 9 }) });
  }
  return out;
}

/** The URL of a loaded asset by its file name (`console.js`). */
export function assetUrl(assets: Map<string, Asset>, file: (typeof ASSET_FILES)[number]): string {
  const [base, ext] = file.split('.') as [string, string];
  for (const [name, a] of assets) if (name.startsWith(`${base}.`) && name.endsWith(`.${ext}`)) return a.url;
  throw new TypeError(`asset ${file} is not loaded`);
}
