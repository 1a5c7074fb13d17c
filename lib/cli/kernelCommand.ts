/**
 * `rome-ts kernel install|uninstall`: registers the rome-ts Jupyter kernel (kernel spec "rome-ts", display name
 * "TypeScript (rome-ts)"), whose argv runs this package's dist/kernel/launcher.js with the current Node. The
 * kernel types its globals and `rome-ts` imports itself, from whatever directory it starts in
 * (kernel/typedGlobals.ts), so nothing is written into node_modules.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The kernel spec name (the directory name under jupyter/kernels). */
export const KERNEL_NAME = 'rome-ts';
/** What Jupyter shows in its kernel menu. */
export const KERNEL_DISPLAY_NAME = 'TypeScript (rome-ts)';
/** Where rome-ts versions before the in-memory typings wrote the globals' declarations (removed on sight). */
export const LEGACY_GLOBALS_TYPES_PACKAGE = '@types/rome-ts-kernel-globals';

const USAGE = `usage:
  rome-ts kernel install [--user | --sys-prefix | --prefix DIR] [--python PATH] [--dev]
  rome-ts kernel uninstall [--user | --sys-prefix | --prefix DIR] [--python PATH]

install    registers the Jupyter kernel "${KERNEL_NAME}" (${KERNEL_DISPLAY_NAME}); its cells get the typed globals
           model, tokenizer, romets, plot, display, tf in any directory. Run \`npm run build\` first. Idempotent.
           --user (default): per-user kernels dir; --sys-prefix: the Python environment's; --prefix DIR: DIR/share.
           --python: the Python whose jupyter_client registers the spec (default /usr/bin/python3 when it has
           jupyter_client, else python3; without any, the spec is written into the per-user kernels dir directly).
           --dev: run the kernel from the TypeScript sources through tsx (for rome-ts development).
uninstall  removes the "${KERNEL_NAME}" kernel spec from the given location, or every one Jupyter finds when no
           location is given.`;

/** Parsed `kernel` arguments. */
interface KernelArgs {
  action: 'install' | 'uninstall' | 'help';
  location: { kind: 'user' } | { kind: 'sys-prefix' } | { kind: 'prefix'; dir: string };
  /** Whether a location flag was given (uninstall then touches only that location). */
  explicitLocation: boolean;
  python: string | null;
  dev: boolean;
}

function parseArgs(args: readonly string[]): KernelArgs {
  const out: KernelArgs = { action: 'help', location: { kind: 'user' }, explicitLocation: false, python: null, dev: false };
  const rest = [...args];
  const action = rest.shift();
  if (action === 'install' || action === 'uninstall') out.action = action;
  else if (action === undefined || action === 'help' || action === '--help' || action === '-h') return out;
  else throw new UsageError(`unknown kernel command "${action}"`);
  while (rest.length) {
    const a = rest.shift()!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? rest.shift();
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--user' || flag === '--sys-prefix' || flag === '--prefix') {
      out.location = flag === '--user' ? { kind: 'user' } : flag === '--sys-prefix' ? { kind: 'sys-prefix' } : { kind: 'prefix', dir: resolve(value()) };
      out.explicitLocation = true;
    } else if (flag === '--python') out.python = value();
    else if (flag === '--dev') out.dev = true;
    else if (flag === '--help' || flag === '-h') out.action = 'help';
    else throw new UsageError(`unknown option "${a}"`);
  }
  return out;
}

class UsageError extends Error {}

/** Root of the rome-ts package (the directory of its package.json). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'rome-ts') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the rome-ts package root');
    dir = parent;
  }
}

function hasJupyterClient(python: string): boolean {
  const r = spawnSync(python, ['-c', 'import jupyter_client'], { stdio: 'ignore' });
  return r.status === 0;
}

/** The Python to use, or null when none has jupyter_client (and none was asked for). */
function choosePython(requested: string | null): string | null {
  if (requested) {
    if (!hasJupyterClient(requested)) throw new Error(`${requested} cannot import jupyter_client (install Jupyter for it, or pick another --python)`);
    return requested;
  }
  for (const candidate of ['/usr/bin/python3', 'python3', 'python']) {
    if ((candidate.startsWith('/') ? existsSync(candidate) : true) && hasJupyterClient(candidate)) return candidate;
  }
  return null;
}

function runPython(python: string, code: string, payload: unknown): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(python, ['-c', code, JSON.stringify(payload)], { encoding: 'utf8' });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

const PY_INSTALL = `
import json, sys
from jupyter_client.kernelspec import KernelSpecManager
a = json.loads(sys.argv[1])
prefix = sys.prefix if a['location'] == 'sys-prefix' else a.get('prefix')
dest = KernelSpecManager().install_kernel_spec(a['src'], a['name'], user=a['location'] == 'user', replace=True, prefix=prefix)
print(dest)
`;

const PY_UNINSTALL = `
import json, os, shutil, sys
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
a = json.loads(sys.argv[1])
ksm = KernelSpecManager()
removed = []
if a['location'] is None:
    while True:
        try:
            removed.append(ksm.remove_kernel_spec(a['name']))
        except (NoSuchKernel, KeyError):
            break
else:
    if a['location'] == 'user':
        kernels = ksm.user_kernel_dir
    else:
        prefix = sys.prefix if a['location'] == 'sys-prefix' else a['prefix']
        kernels = os.path.join(prefix, 'share', 'jupyter', 'kernels')
    dest = os.path.join(kernels, a['name'])
    if os.path.isdir(dest):
        shutil.rmtree(dest)
        removed.append(dest)
print(json.dumps(removed))
`;

/** Per-user Jupyter kernels dir when no Python with jupyter_client is at hand (Jupyter's own rules). */
function userKernelsDir(): string {
  if (process.env.JUPYTER_DATA_DIR) return join(process.env.JUPYTER_DATA_DIR, 'kernels');
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Jupyter', 'kernels');
  if (process.platform === 'win32') return join(process.env.APPDATA ?? homedir(), 'jupyter', 'kernels');
  return join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'jupyter', 'kernels');
}

/** The node_modules directory that holds rome-ts's dependencies (where tslab resolves from). */
function dependencyNodeModules(root: string): string {
  const req = createRequire(join(root, 'package.json'));
  return dirname(dirname(req.resolve('tslab/package.json')));
}

/**
 * Remove what older `kernel install`s of THIS rome-ts wrote into its node_modules: the globals' typings (now
 * served in memory; a stale copy would declare the globals twice) and the node_modules/rome-ts self-link. Copies
 * written for another checkout sharing the node_modules are left alone (they are that checkout's to remove).
 */
function removeLegacyFiles(root: string, nodeModules: string): string[] {
  const removed: string[] = [];
  const typesDir = join(nodeModules, ...LEGACY_GLOBALS_TYPES_PACKAGE.split('/'));
  const dts = join(typesDir, 'index.d.ts');
  // The old index.d.ts imported this package's declarations by a path relative to itself.
  const target = existsSync(dts) ? /import\('([^']+)'\)/.exec(readFileSync(dts, 'utf8'))?.[1] : undefined;
  if (target && realpathSafe(resolve(typesDir, target)) === realpathSafe(join(root, 'dist', 'lib', 'index.js'))) {
    rmSync(typesDir, { recursive: true, force: true });
    removed.push(typesDir);
  }
  const link = join(nodeModules, 'rome-ts');
  if (isSymlink(link) && realpathSafe(link) === realpathSafe(root)) {
    rmSync(link);
    removed.push(link);
  }
  return removed;
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function realpathSafe(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}

function kernelSpec(root: string, dev: boolean): Record<string, unknown> {
  const argv = dev
    ? [process.execPath, '--import', pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href, join(root, 'kernel', 'launcher.ts'), '{connection_file}']
    : [process.execPath, join(root, 'dist', 'kernel', 'launcher.js'), '{connection_file}'];
  return {
    argv,
    display_name: KERNEL_DISPLAY_NAME,
    language: 'typescript',
    interrupt_mode: 'signal',
    metadata: { rome_ts: { root, dev } },
  };
}

function install(a: KernelArgs): number {
  const root = packageRoot();
  const launcher = join(root, 'dist', 'kernel', 'launcher.js');
  const dts = join(root, 'dist', 'lib', 'index.d.ts');
  if (!existsSync(dts) || (!a.dev && !existsSync(launcher))) {
    throw new Error(`rome-ts is not built (${!existsSync(dts) ? dts : launcher} is missing): run \`npm run build\` in ${root} first`);
  }
  const src = mkdtempSync(join(tmpdir(), 'rome-ts-kernelspec-'));
  const specDir = join(src, KERNEL_NAME);
  try {
    mkdirSync(specDir);
    writeFileSync(join(specDir, 'kernel.json'), JSON.stringify(kernelSpec(root, a.dev), null, 2) + '\n');
    const python = choosePython(a.python);
    let dest: string;
    if (python) {
      const payload = { src: specDir, name: KERNEL_NAME, location: a.location.kind, prefix: a.location.kind === 'prefix' ? a.location.dir : null };
      const r = runPython(python, PY_INSTALL, payload);
      if (!r.ok) throw new Error(`registering the kernel spec with ${python} failed:\n${r.stderr.trim()}`);
      dest = r.stdout.trim().split('\n').at(-1) ?? '';
    } else {
      if (a.location.kind === 'sys-prefix') throw new Error('--sys-prefix needs a Python with jupyter_client (use --python PATH)');
      const kernels = a.location.kind === 'prefix' ? join(a.location.dir, 'share', 'jupyter', 'kernels') : userKernelsDir();
      dest = join(kernels, KERNEL_NAME);
      rmSync(dest, { recursive: true, force: true });
      mkdirSync(dest, { recursive: true });
      writeFileSync(join(dest, 'kernel.json'), readFileSync(join(specDir, 'kernel.json')));
      console.log(`(no Python with jupyter_client found: wrote the kernel spec directly)`);
    }
    console.log(`Installed kernel spec "${KERNEL_NAME}" (${KERNEL_DISPLAY_NAME}) in ${dest}`);
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
  for (const p of removeLegacyFiles(root, dependencyNodeModules(root))) console.log(`Removed ${p} (left by an older rome-ts kernel install)`);
  return 0;
}

function uninstall(a: KernelArgs): number {
  const root = packageRoot();
  const python = choosePython(a.python);
  let removed: string[] = [];
  if (python) {
    const payload = {
      name: KERNEL_NAME,
      location: a.explicitLocation ? a.location.kind : null,
      prefix: a.location.kind === 'prefix' ? a.location.dir : null,
    };
    const r = runPython(python, PY_UNINSTALL, payload);
    if (!r.ok) throw new Error(`removing the kernel spec with ${python} failed:\n${r.stderr.trim()}`);
    removed = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '[]') as string[];
  } else {
    if (a.explicitLocation && a.location.kind === 'sys-prefix') throw new Error('--sys-prefix needs a Python with jupyter_client (use --python PATH)');
    const kernels = a.location.kind === 'prefix' ? join(a.location.dir, 'share', 'jupyter', 'kernels') : userKernelsDir();
    const dest = join(kernels, KERNEL_NAME);
    if (existsSync(dest)) {
      rmSync(dest, { recursive: true, force: true });
      removed.push(dest);
    }
  }
  console.log(removed.length ? `Removed kernel spec "${KERNEL_NAME}" from ${removed.join(', ')}` : `No kernel spec "${KERNEL_NAME}" was installed`);
  removeLegacyFiles(root, dependencyNodeModules(root));
  return 0;
}

/** Runs `rome-ts kernel <args>`; returns the process exit code (0 ok, 1 failure, 2 usage error). */
export async function runKernelCommand(args: string[]): Promise<number> {
  let parsed: KernelArgs;
  try {
    parsed = parseArgs(args);
  } catch (e) {
    console.error(`rome-ts kernel: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  try {
    if (parsed.action === 'help') {
      console.log(USAGE);
      return 0;
    }
    return parsed.action === 'install' ? install(parsed) : uninstall(parsed);
  } catch (e) {
    console.error(`rome-ts kernel ${parsed.action}: ${(e as Error).message}`);
    return 1;
  }
}

