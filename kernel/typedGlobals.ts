/**
 * Types for cells from any working directory. tslab type-checks each cell as a file in the kernel's working
 * directory and resolves modules and `@types` packages from `<cwd>/node_modules` upward (Node10 resolution), so a
 * notebook outside the rome-ts checkout would see neither the typed globals nor `import ... from 'rome-ts'`.
 * Instead of writing files into the user's folder, the kernel overlays a virtual `<cwd>/node_modules` onto the
 * file-system calls of the TypeScript instance tslab uses (`sys`), the way tslab itself overlays
 * `<cwd>/node_modules/tslab`:
 * - `<cwd>/node_modules/rome-ts/**` reads this rome-ts package (and `realpath` maps there, so the package's own
 *   imports resolve from its real location, whatever the cwd);
 * - `<cwd>/node_modules/@types/rome-ts-kernel-globals/` holds the globals' declarations, generated in memory with
 *   absolute paths to this package's compiled declarations.
 * The real `<cwd>/node_modules` stays visible for everything else. The run-time side (`require('rome-ts')`
 * returning the kernel's own module) is in launcher.ts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The file-system calls of TypeScript's `sys` that module and type resolution go through. */
export interface TsSys {
  readFile(path: string, encoding?: string): string | undefined;
  fileExists(path: string): boolean;
  directoryExists(path: string): boolean;
  getDirectories(path: string): string[];
  realpath?(path: string): string;
}

/** Name of the in-memory `@types` package that declares the kernel globals. */
export const GLOBALS_TYPES_NAME = 'rome-ts-kernel-globals';

/** What to overlay. Paths may use either separator; TypeScript passes forward slashes. */
export interface VirtualModulesOptions {
  /** The kernel's working directory (where tslab puts the cell file). */
  cwd: string;
  /** Directory of this package (holds package.json and dist/). */
  packageRoot: string;
  /** Package name served at `<cwd>/node_modules/<packageName>` (default 'rome-ts'). */
  packageName?: string;
  /** Files of the globals' `@types` package: file name -> content. */
  globalsFiles: Readonly<Record<string, string>>;
}

const slash = (p: string): string => p.replace(/\\/g, '/').replace(/\/+$/, '');

/**
 * Overlay the virtual node_modules onto `sys` (mutated in place, since tslab's converter delegates to it).
 * Returns a function that restores the original calls.
 */
export function installVirtualModules(sys: TsSys, opts: VirtualModulesOptions): () => void {
  const nm = `${slash(opts.cwd)}/node_modules`;
  const pkgBase = `${nm}/${opts.packageName ?? 'rome-ts'}`;
  const root = slash(opts.packageRoot);
  const typesParent = `${nm}/@types`;
  const typesDir = `${typesParent}/${GLOBALS_TYPES_NAME}`;
  const typesFiles = new Map(Object.entries(opts.globalsFiles).map(([name, text]) => [`${typesDir}/${name}`, text]));
  const original = {
    readFile: sys.readFile,
    fileExists: sys.fileExists,
    directoryExists: sys.directoryExists,
    getDirectories: sys.getDirectories,
    realpath: sys.realpath,
  };
  /** The real path behind a path under the virtual package, or null. */
  const real = (p: string): string | null => (p === pkgBase || p.startsWith(pkgBase + '/') ? root + p.slice(pkgBase.length) : null);
  const under = (p: string, dir: string): boolean => p === dir || p.startsWith(dir + '/');
  const union = (a: readonly string[], b: readonly string[]): string[] => [...new Set([...a, ...b])];
  const realDirs = (p: string): string[] => (original.directoryExists.call(sys, p) ? original.getDirectories.call(sys, p) : []);

  sys.readFile = function (path, encoding) {
    const p = slash(path);
    if (typesFiles.has(p)) return typesFiles.get(p);
    if (under(p, typesDir)) return undefined;
    const r = real(p);
    return original.readFile.call(sys, r ?? path, encoding);
  };
  sys.fileExists = function (path) {
    const p = slash(path);
    if (typesFiles.has(p)) return true;
    if (under(p, typesDir)) return false;
    const r = real(p);
    return original.fileExists.call(sys, r ?? path);
  };
  sys.directoryExists = function (path) {
    const p = slash(path);
    if (p === nm || p === typesParent || p === typesDir) return true;
    if (under(p, typesDir)) return false;
    const r = real(p);
    return original.directoryExists.call(sys, r ?? path);
  };
  sys.getDirectories = function (path) {
    const p = slash(path);
    if (p === nm) return union(realDirs(path), ['@types', opts.packageName ?? 'rome-ts']);
    if (p === typesParent) return union(realDirs(path), [GLOBALS_TYPES_NAME]);
    if (under(p, typesDir)) return [];
    const r = real(p);
    return original.getDirectories.call(sys, r ?? path);
  };
  sys.realpath = function (path) {
    const p = slash(path);
    if (typesFiles.has(p) || under(p, typesDir)) return path;
    const r = real(p);
    const target = r ?? path;
    return original.realpath ? original.realpath.call(sys, target) : target;
  };
  return () => Object.assign(sys, original);
}

/**
 * The globals' declarations (index.d.ts and package.json), from the template in `types/`, with absolute paths to
 * this package's compiled declarations and to the @tensorflow/tfjs-core it uses.
 */
export function globalsTypesFiles(packageRoot: string): Record<string, string> {
  const template = (name: string): string => readFileSync(join(packageRoot, 'types', GLOBALS_TYPES_NAME, name), 'utf8');
  const version = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const tfjsDir = dirname(createRequire(join(packageRoot, 'package.json')).resolve('@tensorflow/tfjs-core/package.json'));
  const indexDts = template('index.d.ts.template')
    .replaceAll('@@ROMETS@@', slash(join(packageRoot, 'dist', 'lib', 'index.js')))
    .replaceAll('@@DISPLAY@@', slash(join(packageRoot, 'dist', 'lib', 'display', 'index.js')))
    .replaceAll('@@TFJS@@', slash(tfjsDir));
  return {
    'index.d.ts': indexDts,
    'package.json': template('package.json.template').replaceAll('@@VERSION@@', version),
  };
}
