import { deflateRawSync, inflateRawSync, type ZlibOptions } from 'node:zlib';
import { ATTEMPT_DICTIONARY_V1, CREDENTIAL_DICTIONARY_V1, EVENT_DICTIONARY_V1 } from './packing-dictionaries.ts';

/**
 * JSON text stored deflated against a preset dictionary of what such values usually say: events, credential
 * records and delivery attempts, the bulk of Redis's memory (an event carries the whole credential, SPEC
 * §5, and is kept 35 days with its attempts; a credential record lives as long as the credential).
 *
 * One value alone deflates poorly (a 1,030-byte event to ≈ 580: too short for deflate to find its own
 * repeats), but nearly all of it — field names, enums, status messages — is the same from one value to the
 * next; against a dictionary of that an event comes to ≈ 210 bytes, mostly its random ids and timestamps.
 * Packing costs ≈ 30 µs, unpacking ≈ 10 µs.
 *
 * A packed value starts with its format byte, which names the dictionary; values starting with `{` are
 * plain JSON (written before packing, or by hand while debugging) and are read as they are.
 */

// An 8 KiB window holds a dictionary and the value together; the default 32 KiB window and memLevel cost
// more to set up for every value than the deflating itself.
const zlibOptions = (dictionary: Buffer): ZlibOptions => ({ dictionary, windowBits: 13, memLevel: 2 });

const FORMATS = {
  event: { byte: 0x01, options: zlibOptions(EVENT_DICTIONARY_V1) },
  credential: { byte: 0x02, options: zlibOptions(CREDENTIAL_DICTIONARY_V1) },
  attempt: { byte: 0x03, options: zlibOptions(ATTEMPT_DICTIONARY_V1) },
} as const;

export type PackedKind = keyof typeof FORMATS;

const OPEN_BRACE = 0x7b;

/** Whether stored bytes are plain JSON, not packed: written before packing, or by hand. */
export function isPlainJson(stored: Buffer): boolean {
  return stored[0] === OPEN_BRACE;
}

const optionsByByte = new Map<number, ZlibOptions>(Object.values(FORMATS).map(({ byte, options }) => [byte, options]));

export function packJson(json: string, kind: PackedKind): Buffer {
  const { byte, options } = FORMATS[kind];
  const deflated = deflateRawSync(json, options);
  const packed = Buffer.allocUnsafe(deflated.length + 1);
  packed[0] = byte;
  deflated.copy(packed, 1);
  return packed;
}

/** The JSON text exactly as it was packed (for an event, the bytes a webhook signs and sends). */
export function unpackJson(packed: Buffer): string {
  if (isPlainJson(packed)) return packed.toString('utf8');
  const options = optionsByByte.get(packed[0] ?? -1);
  if (!options) throw new Error(`unknown packed JSON format ${String(packed[0])}`);
  return inflateRawSync(packed.subarray(1), options).toString('utf8');
}
