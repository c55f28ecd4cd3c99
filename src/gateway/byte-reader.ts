/**
 * Random access to the bytes of a file the request carries, decoded only where a parser looks: an image's size is
 * in its first bytes and its chunk headers, so a 5 MB screenshot sent as base64 is never decoded whole.
 */
export interface ByteReader {
  readonly length: number;
  /** the byte at `at`, or -1 outside the file */
  byte(at: number): number;
}

export function bytesReader(bytes: Uint8Array): ByteReader {
  return { length: bytes.length, byte: (at) => (at >= 0 && at < bytes.length ? (bytes[at] as number) : -1) };
}

const SEXTETS = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) {
  SEXTETS["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;
}

/**
 * The bytes of standard base64 text (from `start`), or null unless the whole text is strict base64: only the 64
 * letters, `=` padding at the end and a length that is a multiple of four. A provider that decodes leniently
 * skips a stray character (a space, a line break), which shifts every byte after it; checking every character
 * once is what makes the bytes read here the bytes the provider decodes.
 */
export function base64Reader(text: string, start = 0): ByteReader | null {
  const chars = text.length - start;
  if (chars % 4 !== 0) return null;
  let padding = 0;
  if (chars > 0 && text.charCodeAt(text.length - 1) === 61) padding = text.charCodeAt(text.length - 2) === 61 ? 2 : 1;
  for (let i = start; i < text.length - padding; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || SEXTETS[c] === -1) return null;
  }
  const length = (chars / 4) * 3 - padding;
  return {
    length,
    byte(at) {
      if (at < 0 || at >= length) return -1;
      const group = start + Math.floor(at / 3) * 4;
      const sextet = (k: number) => SEXTETS[text.charCodeAt(group + k) & 127] as number;
      const bits = (sextet(0) << 18) | (sextet(1) << 12) | (Math.max(0, sextet(2)) << 6) | Math.max(0, sextet(3));
      return (bits >> (16 - (at % 3) * 8)) & 0xff;
    },
  };
}

/** A `data:` URL's bytes when it is base64 (`data:image/png;base64,…`); null for anything else. */
export function dataUrlReader(url: string): ByteReader | null {
  if (!url.startsWith("data:")) return null;
  const comma = url.indexOf(",");
  if (comma < 0 || !url.slice(0, comma).toLowerCase().endsWith(";base64")) return null;
  return base64Reader(url, comma + 1);
}
