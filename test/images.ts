/**
 * Image and PDF files for the hold tests and the fit bench (workers, Node and the fake provider's tests alike):
 * honest files of a given pixel size, and crafted ones — a header that states a small picture in front of a large
 * one, truncated files, animations, a PDF whose page count lies. Pixel data is filler of the right length (no
 * parser here decodes it), so a file of any size is cheap to make.
 */

const text = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const u32be = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const u32le = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const u16le = (n: number) => [n & 255, (n >>> 8) & 255];
const u16be = (n: number) => [(n >>> 8) & 255, n & 255];

function concat(...parts: (Uint8Array | number[])[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deterministic filler bytes (never 0xFF, so JPEG scan data holds no markers). */
function filler(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2_654_435_761;
  for (let i = 0; i < length; i++) {
    x = (x * 1_103_515_245 + 12_345) >>> 0;
    out[i] = (x >>> 16) % 255;
  }
  return out;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 255] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array | number[]): Uint8Array {
  const body = concat(text(type), data);
  return concat(u32be(data.length), body, u32be(crc32(body)));
}

export interface PngOptions {
  /** bytes of IDAT data (default: a compressed-looking tenth of the raw RGBA rows, at least 64) */
  idatBytes?: number;
  /** a second IHDR chunk stating this size (a file that states its size twice) */
  secondSize?: [number, number];
  /** an acTL chunk: an animated PNG */
  animated?: boolean;
}

export function png(width: number, height: number, o: PngOptions = {}): Uint8Array<ArrayBuffer> {
  const ihdr = (w: number, h: number) => pngChunk("IHDR", [...u32be(w), ...u32be(h), 8, 6, 0, 0, 0]);
  const idat = o.idatBytes ?? Math.max(64, Math.floor((height * (width * 4 + 1)) / 10));
  return concat(
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    ihdr(width, height),
    o.animated ? pngChunk("acTL", [...u32be(2), ...u32be(0)]) : [],
    o.secondSize ? ihdr(...o.secondSize) : [],
    pngChunk("IDAT", filler(idat)),
    pngChunk("IEND", []),
  );
}

export interface JpegOptions {
  /** bytes of scan data (default: a tenth of a byte a pixel, at least 64) */
  scanBytes?: number;
  /** a second frame header stating this size */
  secondSize?: [number, number];
  /** bytes of an APP1 (EXIF) segment, with a small embedded thumbnail's frame header inside it */
  exifBytes?: number;
}

export function jpeg(width: number, height: number, o: JpegOptions = {}): Uint8Array<ArrayBuffer> {
  const segment = (marker: number, data: Uint8Array | number[]) => concat([0xff, marker], u16be(data.length + 2), data);
  const sof = (w: number, h: number) => segment(0xc0, [8, ...u16be(h), ...u16be(w), 1, 1, 0x11, 0]);
  const exif = o.exifBytes
    ? segment(0xe1, concat(text("Exif\0\0"), [0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 8, 0, 8], filler(o.exifBytes)))
    : [];
  const scan = o.scanBytes ?? Math.max(64, Math.floor((width * height) / 10));
  return concat(
    [0xff, 0xd8],
    segment(0xe0, concat(text("JFIF\0"), [1, 1, 0, 0, 1, 0, 1, 0, 0])),
    exif,
    segment(0xdb, concat([0], filler(64, 2))),
    sof(width, height),
    o.secondSize ? sof(...o.secondSize) : [],
    segment(0xc4, concat([0], filler(28, 3))),
    segment(0xda, [1, 1, 0, 0, 63, 0]),
    filler(scan, 4),
    [0xff, 0xd9],
  );
}

export interface GifOptions {
  /** frames (more than one: animated) */
  frames?: number;
  /** LZW data bytes of each frame (default: a tenth of a byte a pixel, at least 8) */
  dataBytes?: number;
  /** the first frame's size when it differs from the screen's (one reaching outside it) */
  frameSize?: [number, number];
}

export function gif(width: number, height: number, o: GifOptions = {}): Uint8Array<ArrayBuffer> {
  const [fw, fh] = o.frameSize ?? [width, height];
  const data = o.dataBytes ?? Math.max(8, Math.floor((fw * fh) / 10));
  const subBlocks = (n: number) => {
    const parts: (Uint8Array | number[])[] = [];
    for (let left = n; left > 0; left -= 255) {
      const size = Math.min(255, left);
      parts.push([size], filler(size, left));
    }
    return concat(...parts, [0]);
  };
  const frame = () =>
    concat(
      [0x21, 0xf9, 4, 0, 10, 0, 0, 0],
      [0x2c, ...u16le(0), ...u16le(0), ...u16le(fw), ...u16le(fh), 0, 2],
      subBlocks(data),
    );
  const frames = Array.from({ length: o.frames ?? 1 }, frame);
  return concat(text("GIF89a"), u16le(width), u16le(height), [0x80, 0, 0], filler(6, 5), ...frames, [0x3b]);
}

export interface WebpOptions {
  /** bytes of VP8 bitstream (default: a tenth of a byte a pixel, at least 32) */
  bitstreamBytes?: number;
  /** an extended file (VP8X) with this canvas; animated: the animation flag and an ANIM chunk */
  canvas?: [number, number];
  animated?: boolean;
  /** lossless (VP8L) rather than lossy */
  lossless?: boolean;
}

export function webp(width: number, height: number, o: WebpOptions = {}): Uint8Array<ArrayBuffer> {
  const chunk = (type: string, data: Uint8Array | number[]) =>
    concat(text(type), u32le(data.length), data, data.length % 2 ? [0] : []);
  const size = Math.max(32, o.bitstreamBytes ?? Math.floor((width * height) / 10));
  const bits = (width - 1) | ((height - 1) << 14);
  const image = o.lossless
    ? chunk("VP8L", concat([0x2f], u32le(bits >>> 0), filler(size - 5)))
    : chunk("VP8 ", concat([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a], u16le(width), u16le(height), filler(size - 10)));
  const extended = o.canvas
    ? concat(
        chunk("VP8X", [
          o.animated ? 0x02 : 0,
          0,
          0,
          0,
          ...u32le(o.canvas[0] - 1).slice(0, 3),
          ...u32le(o.canvas[1] - 1).slice(0, 3),
        ]),
        o.animated ? chunk("ANIM", [0, 0, 0, 0, 0, 0]) : [],
      )
    : new Uint8Array();
  const body = concat(text("WEBP"), extended, image);
  return concat(text("RIFF"), u32le(body.length), body);
}

/**
 * A PDF of `pages` page objects (each with a text line of `textBytes`), whose page tree's /Count says `claims`
 * (a lie when it differs from `pages`).
 */
export function pdf(pages: number, o: { claims?: number; textBytes?: number } = {}): Uint8Array<ArrayBuffer> {
  const objects: string[] = ["<< /Type /Catalog /Pages 2 0 R >>"];
  const kids = Array.from({ length: pages }, (_, i) => `${3 + 2 * i} 0 R`).join(" ");
  objects.push(`<< /Type /Pages /Kids [${kids}] /Count ${o.claims ?? pages} >>`);
  for (let i = 0; i < pages; i++) {
    objects.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${4 + 2 * i} 0 R >>`);
    const line = `BT /F1 12 Tf 72 720 Td (${"x".repeat(o.textBytes ?? 40)}) Tj ET`;
    objects.push(`<< /Length ${line.length} >>\nstream\n${line}\nendstream`);
  }
  let out = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const at of offsets) out += `${String(at).padStart(10, "0")} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return text(out) as Uint8Array<ArrayBuffer>;
}

/** Cut a file short (a truncated header or chunk). */
export const truncated = (bytes: Uint8Array, keep: number) => bytes.slice(0, keep);

/** Standard base64, and a data URL of it. */
export function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
export const dataUrl = (bytes: Uint8Array, type = "image/png") => `data:${type};base64,${base64(bytes)}`;
