/** A checkpoint file or directory that cannot be used; the message always names the path and the problem. */
export class CheckpointError extends Error {
  /** File or directory the problem was found in. */
  readonly path: string;
  /** The problem alone, without the path. */
  readonly problem: string;

  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super(`${path}: ${problem}`, options);
    this.name = 'CheckpointError';
    this.path = path;
    this.problem = problem;
  }
}
