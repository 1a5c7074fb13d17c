/** Locating the rome-ts package this kernel code belongs to (works from kernel/*.ts and dist/kernel/*.js). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the directory holding rome-ts's package.json. Throws if it cannot be found. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'rome-ts') return dir;
      } catch {
        // unreadable package.json: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`rome-ts: cannot find the rome-ts package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}
