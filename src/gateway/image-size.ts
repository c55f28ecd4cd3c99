import type { ByteReader } from "./byte-reader.ts";

/**
 * The pixel size of a PNG, JPEG, GIF or WebP image, read from its headers — what a provider bills an image by.
 * Only a file whose size the gateway can vouch for gets one; anything else gets null, and its hold is the
 * provider's per-image ceiling. Null when:
 * - the format is none of the four, or a header or chunk is cut short (truncated files);
 * - the file states its size twice (a second PNG IHDR, a second JPEG frame header, a WebP canvas and bitstream
 *   that disagree by more than the bitstream fits in), or states a size of zero;
 * - it is animated (APNG, a GIF of more than one frame, animated WebP): which frames a provider reads is not
 *   documented;
 * - its pixel data is larger than the stated size can hold (a header that claims a small picture in front of a
 *   large one): a decoder may read what is there rather than what the header says;
 * - a frame reaches outside the GIF's canvas, or a VP8 bitstream asks to be scaled up.
 */
export interface ImageSize {
  format: "png" | "jpeg" | "gif" | "webp";
  width: number;
  height: number;
}

export function imageSize(b: ByteReader): ImageSize | null {
  if (b.length < 12) return null;
  if (matches(b, 0, PNG_SIGNATURE)) return png(b);
  if (b.byte(0) === 0xff && b.byte(1) === 0xd8 && b.byte(2) === 0xff) return jpeg(b);
  if (ascii(b, 0, 4) === "GIF8") return gif(b);
  if (ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") return webp(b);
  return null;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function matches(b: ByteReader, at: number, bytes: number[]): boolean {
  return bytes.every((x, i) => b.byte(at + i) === x);
}

/** `n` bytes as Latin-1 text (a chunk type, a signature); a byte past the end makes it unequal to any type. */
function ascii(b: ByteReader, at: number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) {
    const x = b.byte(at + i);
    s += x < 0 ? "\uffff" : String.fromCharCode(x);
  }
  return s;
}

/** Big- and little-endian unsigned integers; NaN when any byte is past the end (every comparison then fails). */
function be(b: ByteReader, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + orNaN(b.byte(at + i));
  return v;
}

function le(b: ByteReader, at: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + orNaN(b.byte(at + i));
  return v;
}

const orNaN = (x: number) => (x < 0 ? Number.NaN : x);
const sized = (format: ImageSize["format"], width: number, height: number): ImageSize | null =>
  width > 0 && height > 0 ? { format, width, height } : null;

/** Channels per PNG colour type (0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * PNG: the IHDR chunk first, every chunk whole up to IEND. The IDAT chunks must fit the stated size: the raw rows
 * (a filter byte each; Adam7's seven passes add at most seven filter bytes and seven part-bytes a row) coded no
 * worse than deflate's fixed codes do (9 bits a byte) or its stored blocks (5 bytes a block), plus zlib's 6.
 */
function png(b: ByteReader): ImageSize | null {
  if (be(b, 8, 4) !== 13 || ascii(b, 12, 4) !== "IHDR") return null;
  const width = be(b, 16, 4);
  const height = be(b, 20, 4);
  const channels = PNG_CHANNELS[b.byte(25)];
  if (channels === undefined) return null;
  const raw = height * (Math.ceil((width * channels * b.byte(24)) / 8) + 15) + 64;
  const idatLimit = Math.ceil(raw * 1.125) + 5 * Math.ceil(raw / 65_535) + 6;
  let idat = 0;
  for (let at = 33; ; ) {
    const length = be(b, at, 4);
    const type = ascii(b, at + 4, 4);
    const next = at + 12 + length;
    if (!(length < 2 ** 31) || next > b.length) return null;
    if (type === "IHDR" || type === "acTL" || type === "fcTL" || type === "fdAT") return null;
    if (type === "IDAT") idat += length;
    if (type === "IEND") return idat > 0 && idat <= idatLimit ? sized("png", width, height) : null;
    at = next;
  }
}

/** JPEG frame headers (SOF0–SOF15 but DHT, JPG and DAC); hierarchical ones (SOF5–7, 13–15) are refused. */
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc9, 0xca, 0xcb]);
const HIERARCHICAL_SOF = new Set([0xc5, 0xc6, 0xc7, 0xcd, 0xce, 0xcf]);
/**
 * The most bytes of entropy-coded data a JPEG pixel can take: a component's 8×8 block codes at most 64 coefficients
 * of ≤ 27 bits (a 16-bit Huffman code and 11 bits), doubled by byte stuffing ≈ 6.8 bytes a pixel; four components
 * at full resolution, and progressive scans that code each coefficient again bit by bit, stay under 64.
 */
const JPEG_BYTES_PER_PIXEL = 64;

/**
 * JPEG: the segments before the first scan, one baseline or progressive frame header among them; the data from
 * the scan on (the scans, and whatever follows the image) must fit the frame's pixels, padded to whole 32-pixel
 * blocks.
 */
function jpeg(b: ByteReader): ImageSize | null {
  let frame: { width: number; height: number } | null = null;
  for (let at = 2; ; ) {
    if (b.byte(at) !== 0xff) return null;
    let marker = b.byte(at + 1);
    while (marker === 0xff) marker = b.byte(++at + 1);
    if (marker < 0) return null;
    const length = be(b, at + 2, 2);
    if (!(length >= 2) || at + 2 + length > b.length) return null;
    if (HIERARCHICAL_SOF.has(marker)) return null;
    if (SOF.has(marker)) {
      if (frame || length < 8) return null;
      frame = { height: be(b, at + 5, 2), width: be(b, at + 7, 2) };
    }
    if (marker === 0xda) {
      if (!frame) return null;
      const blocks = Math.ceil(frame.width / 32) * Math.ceil(frame.height / 32);
      const limit = blocks * 32 * 32 * JPEG_BYTES_PER_PIXEL + 1_024;
      return b.length - at <= limit ? sized("jpeg", frame.width, frame.height) : null;
    }
    // Standalone markers (SOI, EOI, RSTn, TEM) have no length: before the first scan they mean a broken file.
    if (marker === 0xd8 || marker === 0xd9 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) return null;
    at += 2 + length;
  }
}

/**
 * GIF: the logical screen, then blocks to the trailer; exactly one image, inside the screen, whose LZW data fits
 * its pixels (at most one 12-bit code a pixel and a clear code before each: 3 bytes a pixel).
 */
function gif(b: ByteReader): ImageSize | null {
  const version = ascii(b, 0, 6);
  if (version !== "GIF87a" && version !== "GIF89a") return null;
  const width = le(b, 6, 2);
  const height = le(b, 8, 2);
  const colorTable = (flags: number) => (flags & 0x80 ? 3 * 2 ** ((flags & 7) + 1) : 0);
  let at = 13 + colorTable(b.byte(10));
  let frames = 0;
  /** Skips data sub-blocks (a length byte, then that many bytes, up to a zero length); -1 when cut short. */
  const subBlocks = (): number => {
    let bytes = 0;
    for (let size = b.byte(at); size !== 0; size = b.byte(at)) {
      if (size < 0) return -1;
      at += 1 + size;
      bytes += size;
    }
    at += 1;
    return bytes;
  };
  for (;;) {
    const block = b.byte(at);
    if (block === 0x3b) return frames === 1 ? sized("gif", width, height) : null;
    if (block === 0x21) {
      at += 2;
      if (subBlocks() < 0) return null;
    } else if (block === 0x2c) {
      if (++frames > 1) return null;
      const left = le(b, at + 1, 2);
      const top = le(b, at + 3, 2);
      const w = le(b, at + 5, 2);
      const h = le(b, at + 7, 2);
      if (!(left + w <= width && top + h <= height) || w === 0 || h === 0) return null;
      at += 10 + colorTable(b.byte(at + 9)) + 1;
      const data = subBlocks();
      if (data < 0 || data > 3 * w * h + 16) return null;
    } else {
      return null;
    }
  }
}

/** The most bytes a WebP bitstream can take per pixel (VP8's bool coder at its worst, VP8L's codes): generous. */
const WEBP_BYTES_PER_PIXEL = 64;

/**
 * WebP: the RIFF chunks, whole; one VP8 or VP8L bitstream, which fits its pixels (padded to 16-pixel macroblocks),
 * and no animation. An extended file's canvas holds the bitstream: the larger of the two sizes is taken.
 */
function webp(b: ByteReader): ImageSize | null {
  const end = 8 + le(b, 4, 4);
  if (!(end <= b.length)) return null;
  let canvas: { width: number; height: number } | null = null;
  let image: { width: number; height: number; bytes: number } | null = null;
  for (let at = 12; at < end; ) {
    const type = ascii(b, at, 4);
    const length = le(b, at + 4, 4);
    const data = at + 8;
    if (!(data + length <= end)) return null;
    if (type === "VP8X") {
      if (canvas || at !== 12 || length < 10 || b.byte(data) & 0x02) return null;
      canvas = { width: 1 + le(b, data + 4, 3), height: 1 + le(b, data + 7, 3) };
    } else if (type === "ANIM" || type === "ANMF") {
      return null;
    } else if (type === "VP8 " || type === "VP8L") {
      if (image) return null;
      const size = type === "VP8 " ? vp8Size(b, data, length) : vp8lSize(b, data, length);
      if (!size) return null;
      image = { ...size, bytes: length };
    }
    at = data + length + (length % 2);
  }
  if (!image) return null;
  const pixels = Math.ceil(image.width / 16) * 16 * Math.ceil(image.height / 16) * 16;
  if (image.bytes > pixels * WEBP_BYTES_PER_PIXEL + 1_024) return null;
  const width = Math.max(image.width, canvas?.width ?? 0);
  const height = Math.max(image.height, canvas?.height ?? 0);
  return sized("webp", width, height);
}

/** A VP8 key frame's size (14 bits each); its 2-bit scale fields must be 0 (a decoder may upscale by them). */
function vp8Size(b: ByteReader, at: number, length: number) {
  if (length < 10 || b.byte(at) & 1 || !matches(b, at + 3, [0x9d, 0x01, 0x2a])) return null;
  const w = le(b, at + 6, 2);
  const h = le(b, at + 8, 2);
  if (w >> 14 || h >> 14) return null;
  return { width: w, height: h };
}

/** A VP8L bitstream's size: after its 0x2f signature, 14 bits of width − 1 and 14 of height − 1. */
function vp8lSize(b: ByteReader, at: number, length: number) {
  if (length < 5 || b.byte(at) !== 0x2f) return null;
  const bits = le(b, at + 1, 4);
  return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >>> 14) & 0x3fff) };
}
