import { readFile } from 'node:fs/promises';

/** A JSON value whose fields are checked by the loaders before use. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Thrown when a dataset file does not have the expected shape; names the file, record and field. */
export class DatasetFormatError extends Error {
  constructor(file: string, where: string, problem: string) {
    super(`rome-ts: ${file}: ${where}: ${problem}`);
    this.name = 'DatasetFormatError';
  }
}

/** Reads and parses a JSON file. */
export async function readJson(file: string): Promise<JsonValue> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new DatasetFormatError(file, 'file', `invalid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Narrows a JSON value to an object. */
export function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Field readers that throw {@link DatasetFormatError} with the record's location. */
export class RecordReader {
  constructor(
    readonly file: string,
    readonly where: string,
    readonly obj: JsonObject,
  ) {}

  private fail(key: string, problem: string): never {
    throw new DatasetFormatError(this.file, this.where, `field "${key}" ${problem}`);
  }

  /** A required string field (may be empty only when allowEmpty). */
  str(key: string, allowEmpty = false): string {
    const v = this.obj[key];
    if (typeof v !== 'string') this.fail(key, v === undefined ? 'is missing' : 'is not a string');
    if (!allowEmpty && v.length === 0) this.fail(key, 'is empty');
    return v;
  }

  /** A required integer field. */
  int(key: string): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(key, v === undefined ? 'is missing' : 'is not an integer');
    return v;
  }

  /** A required nested object. */
  object(key: string): RecordReader {
    const v = this.obj[key];
    if (!isObject(v)) this.fail(key, v === undefined ? 'is missing' : 'is not an object');
    return new RecordReader(this.file, `${this.where}.${key}`, v);
  }

  /** An array of strings; missing is allowed when optional (returns []). */
  strings(key: string, optional = false): string[] {
    const v = this.obj[key];
    if (v === undefined && optional) return [];
    if (!Array.isArray(v)) this.fail(key, v === undefined ? 'is missing' : 'is not an array');
    return v.map((x, i) => {
      if (typeof x !== 'string') this.fail(`${key}[${i}]`, 'is not a string');
      return x;
    });
  }

  /** Whether the field is present. */
  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }
}

/** Checks that a parsed file is an array of objects and returns it. */
export function expectRecords(file: string, data: JsonValue): JsonObject[] {
  if (!Array.isArray(data)) throw new DatasetFormatError(file, 'file', 'expected a JSON array of records');
  return data.map((r, i) => {
    if (!isObject(r)) throw new DatasetFormatError(file, `record ${i}`, 'is not an object');
    return r;
  });
}
