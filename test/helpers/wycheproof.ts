import { readFileSync } from 'node:fs';

/**
 * The Wycheproof vectors, vendored in test/fixtures/wycheproof/ (LICENSE and NOTICE there name
 * the source and commit). Tests read nothing outside the repository.
 */
export const WYCHEPROOF_DIR = new URL('../fixtures/wycheproof/', import.meta.url);

export function readWycheproof<T = any>(file: string): T {
  return JSON.parse(readFileSync(new URL(file, WYCHEPROOF_DIR), 'utf8')) as T;
}
