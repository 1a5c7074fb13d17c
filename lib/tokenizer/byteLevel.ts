/**
 * GPT-2's byte-level alphabet and pre-tokenisation rule, shared by the tokenizer, the tokenizer.json
 * builder and the BPE trainer.
 *
 * Byte-level BPE works on UTF-8 bytes, but merges and vocab entries are stored as strings, so every byte is
 * shown as one printable Unicode character: printable Latin-1 bytes stand for themselves, the 68 others
 * (controls, space, NBSP, soft hyphen) are shifted to U+0100.. in byte order. A space is thus 'Ġ' (U+0120).
 */

/** GPT-2's pre-tokenisation regex: contractions, letter runs, digit runs, other runs, whitespace. */
export const GPT2_PRETOKENIZE_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** A fresh global Unicode RegExp for GPT2_PRETOKENIZE_PATTERN (fresh because `g` regexes carry state). */
export function gpt2PretokenizeRegex(): RegExp {
  return new RegExp(GPT2_PRETOKENIZE_PATTERN, 'gu');
}

/** Splits text into GPT-2 pre-tokens (strings whose concatenation is `text`). */
export function pretokenize(text: string): string[] {
  return text.match(gpt2PretokenizeRegex()) ?? [];
}

function buildByteOrder(): number[] {
  const order: number[] = [];
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  for (let b = 0; b < 256; b++) if (printable(b)) order.push(b);
  for (let b = 0; b < 256; b++) if (!printable(b)) order.push(b);
  return order;
}

/**
 * The 256 bytes in GPT-2's vocabulary order: printable bytes ascending, then the others ascending.
 * GPT-2's ids 0..255 are exactly `BYTE_ORDER.map(byteToChar)`.
 */
export const BYTE_ORDER: readonly number[] = buildByteOrder();

const BYTE_TO_CHAR: string[] = new Array<string>(256);
const CHAR_TO_BYTE = new Map<string, number>();
{
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const ch = String.fromCharCode(printable ? b : 256 + shifted++);
    BYTE_TO_CHAR[b] = ch;
    CHAR_TO_BYTE.set(ch, b);
  }
}

/** The alphabet character (one UTF-16 unit) standing for byte `b` (0..255). */
export function byteToChar(b: number): string {
  const ch = BYTE_TO_CHAR[b];
  if (ch === undefined) throw new RangeError(`byte out of range: ${b}`);
  return ch;
}

/** The byte (0..255) that alphabet character `ch` stands for, or undefined if `ch` is not in the alphabet. */
export function charToByte(ch: string): number | undefined {
  return CHAR_TO_BYTE.get(ch);
}

const utf8 = new TextEncoder();

/** Maps a text to its byte-level string: UTF-8 encode, then one alphabet char per byte. */
export function textToByteLevel(text: string): string {
  const bytes = utf8.encode(text);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]!];
  return out;
}

/** Bytes of a byte-level token string (e.g. 'ĠParis' -> [32, 80, 97, 114, 105, 115]); null if a char is foreign. */
export function byteLevelToBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = CHAR_TO_BYTE.get(token[i]!);
    if (b === undefined) return null;
    out[i] = b;
  }
  return out;
}
