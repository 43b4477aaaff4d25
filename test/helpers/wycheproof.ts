import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The Wycheproof vectors live beside the repository in ../shared (read in place, never copied). */
export const WYCHEPROOF_DIR = path.resolve(fileURLToPath(new URL('../..', import.meta.url)), '../shared/vectors/wycheproof');

export function readWycheproof<T = any>(file: string): T {
  return JSON.parse(readFileSync(path.join(WYCHEPROOF_DIR, file), 'utf8')) as T;
}
