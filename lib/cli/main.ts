#!/usr/bin/env node
/**
 * The `rome-ts` command line.
 */
import { UsageError } from './inspectCommand.js';
import { exitAfterFlush, installErrorReporter } from './exit.js';

interface Command {
  summary: string;
  run: (args: string[]) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  inspect: {
    summary: 'inspect [model] (--prompt "<text>" | --ids 1,2,3) [--top 10] [--json]   tokens and top next tokens',
    run: async (a) => (await import('./inspectCommand.js')).runInspectCommand(a),
  },
  trace: {
    summary: 'trace "<prompt>" --subject "<subject>" [--kind mlp|attn|hidden|all] [--out fig.svg|.json]   causal trace (Fig. 1)',
    run: async (a) => (await import('./traceCommand.js')).runTraceCommand(a),
  },
  'trace-avg': {
    summary: 'trace-avg --n 100 --out DIR [--shard i/N] [--resume]   average indirect effects over known facts (Fig. 2)',
    run: async (a) => (await import('./traceCommand.js')).runTraceAvgCommand(a),
  },
  edit: {
    summary: 'edit --prompt "{} plays" --subject "X" --target "football" [--method rome|ft|ft-l|kn] [--out edit.json]   edit a fact',
    run: async (a) => (await import('./editCommand.js')).runEditCommand(a),
  },
  eval: {
    summary: 'eval counterfact|zsre --method rome|ft|ft-l|kn|none --n N --out DIR [--shard i/N]   evaluate edits',
    run: async (a) => (await import('./evalCommand.js')).runEvalCommand(a),
  },
  summarize: {
    summary: 'summarize DIR... [--md FILE] [--json FILE]   paper-style table with 95% CIs',
    run: async (a) => (await import('./evalCommand.js')).runSummarizeCommand(a),
  },
  kernel: {
    summary: 'kernel install [--user|--sys-prefix] [--python PATH] | kernel uninstall   the Jupyter kernel',
    run: async (a) => (await import('./kernelCommand.js')).runKernelCommand(a),
  },
};

/** Registers a subcommand (used to add commands from other modules). */
export function registerCommand(name: string, cmd: Command): void {
  COMMANDS[name] = cmd;
}

function help(): string {
  const lines = Object.entries(COMMANDS).map(([, c]) => `  rome-ts ${c.summary}`);
  return [
    'rome-ts — locate and edit factual associations in GPT models',
    '',
    'Usage:',
    ...lines,
    '',
    'Every command takes --help. Models: a local directory (config.json, model.safetensors, tokenizer.json) or a',
    'Hugging Face hub id such as gpt2 (downloaded once into $ROME_TS_CACHE). Default model: $ROME_TS_MODEL, else the',
    'bundled model. Backend: $ROME_TS_BACKEND = tensorflow | wasm | cpu (default: best available).',
  ].join('\n');
}

/** Entry point: dispatches argv to a subcommand; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version') {
    process.stdout.write('0.1.0\n');
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`rome-ts: unknown command "${name}"\n\n${help()}\n`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof UsageError || err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      process.stderr.write(`rome-ts ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`rome-ts ${name}: error: ${err.message}\n`);
    if (process.env.ROME_TS_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

const invokedDirectly = process.argv[1] && /(?:main\.[jt]s|rome-ts)$/.test(process.argv[1]);
if (invokedDirectly) {
  installErrorReporter('rome-ts');
  main(process.argv.slice(2)).then(
    (code) => exitAfterFlush(code),
    (e: unknown) => {
      process.stderr.write(`rome-ts: ${(e as Error).message}\n`);
      return exitAfterFlush(1);
    },
  );
}
