import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { base64Reader, bytesReader, dataUrlReader } from "../../src/gateway/byte-reader.ts";
import { imageSize } from "../../src/gateway/image-size.ts";
import { base64, dataUrl, gif, jpeg, png, truncated, webp } from "../images.ts";

const size = (bytes: Uint8Array) => imageSize(bytesReader(bytes));
const honest = {
  png: png(1568, 882),
  jpeg: jpeg(1920, 1080),
  gif: gif(320, 240),
  webp: webp(800, 600),
  lossless: webp(640, 480, { lossless: true }),
  extended: webp(1000, 700, { canvas: [1000, 700] }),
};

describe("image sizes read from headers", () => {
  it("reads PNG, JPEG, GIF and WebP (lossy, lossless, extended) sizes", () => {
    expect(size(honest.png)).toEqual({ format: "png", width: 1568, height: 882 });
    expect(size(honest.jpeg)).toEqual({ format: "jpeg", width: 1920, height: 1080 });
    expect(size(honest.gif)).toEqual({ format: "gif", width: 320, height: 240 });
    expect(size(honest.webp)).toEqual({ format: "webp", width: 800, height: 600 });
    expect(size(honest.lossless)).toEqual({ format: "webp", width: 640, height: 480 });
    expect(size(honest.extended)).toEqual({ format: "webp", width: 1000, height: 700 });
    // An EXIF segment carrying a thumbnail's own frame header is skipped whole.
    expect(size(jpeg(1200, 900, { exifBytes: 20_000 }))).toMatchObject({ width: 1200, height: 900 });
    // Sizes a provider scales down are read as they are (the token rule caps them).
    expect(size(png(40_000, 30_000, { idatBytes: 1_000 }))).toMatchObject({ width: 40_000, height: 30_000 });
  });

  it("reads the same bytes from base64 and data URLs as from the file", () => {
    for (const bytes of Object.values(honest)) {
      expect(imageSize(base64Reader(base64(bytes))!)).toEqual(size(bytes));
      expect(imageSize(dataUrlReader(dataUrl(bytes))!)).toEqual(size(bytes));
    }
    const reader = base64Reader(base64(Uint8Array.of(1, 2, 3, 4, 5)))!;
    expect([0, 1, 2, 3, 4, 5].map((i) => reader.byte(i))).toEqual([1, 2, 3, 4, 5, -1]);
    expect(reader.length).toBe(5);
  });

  it("refuses base64 a provider could read differently (stray characters, bad padding) and other data URLs", () => {
    const b64 = base64(honest.png);
    expect(base64Reader(`${b64.slice(0, 40)}\n${b64.slice(40)}`)).toBeNull();
    expect(base64Reader(`${b64.slice(0, 40)} ${b64.slice(41)}`)).toBeNull();
    expect(base64Reader(b64.slice(0, -1))).toBeNull();
    expect(base64Reader(`${b64.slice(0, 8)}=${b64.slice(9)}`)).toBeNull();
    expect(base64Reader(b64.replaceAll("+", "-"))).toBe(b64.includes("+") ? null : base64Reader(b64));
    expect(dataUrlReader(`data:image/png,${encodeURIComponent("\u0089PNG")}`)).toBeNull();
    expect(dataUrlReader("https://example.com/cat.png")).toBeNull();
  });

  it("a cut-short file never reads as another size: every prefix gives nothing or the whole file's size", () => {
    for (const bytes of Object.values(honest)) {
      const whole = size(bytes);
      for (let keep = 0; keep < bytes.length; keep += keep < 200 ? 1 : 97) {
        const cut = size(truncated(bytes, keep));
        if (cut !== null) expect(cut, `${whole?.format} cut at ${keep}`).toEqual(whole);
      }
    }
    // Headers cut short give nothing at all.
    for (const [bytes, keep] of [
      [honest.png, 30],
      [honest.gif, 20],
      [honest.webp, 25],
      [honest.jpeg, 40],
    ] as const) {
      expect(size(truncated(bytes, keep))).toBeNull();
    }
  });

  it("crafted files get no size: stated twice, animated, more pixel data than the stated size holds", () => {
    const crafted: Record<string, Uint8Array> = {
      "PNG with two IHDR": png(16, 16, { secondSize: [4000, 4000] }),
      APNG: png(64, 64, { animated: true }),
      "PNG 8×8 with 1 MB of IDAT": png(8, 8, { idatBytes: 1_000_000 }),
      "JPEG with two frame headers": jpeg(16, 16, { secondSize: [4000, 4000] }),
      "JPEG 8×8 with 1 MB of scan data": jpeg(8, 8, { scanBytes: 1_000_000 }),
      "JPEG of height 0 (set later by DNL)": jpeg(64, 0),
      "animated GIF": gif(64, 64, { frames: 3 }),
      "GIF frame outside its screen": gif(16, 16, { frameSize: [4000, 16] }),
      "GIF 8×8 with 100 kB of LZW data": gif(8, 8, { dataBytes: 100_000 }),
      "animated WebP": webp(64, 64, { canvas: [64, 64], animated: true }),
      "WebP 16×16 with 1 MB of bitstream": webp(16, 16, { bitstreamBytes: 1_000_000 }),
      "not an image": new TextEncoder().encode("<svg xmlns='http://www.w3.org/2000/svg' width='9000'/>"),
    };
    for (const [name, bytes] of Object.entries(crafted)) expect(size(bytes), name).toBeNull();
    // A VP8 bitstream that asks to be scaled up for display.
    const scaled = webp(64, 64);
    scaled[27] = (scaled[27] ?? 0) | 0x40;
    expect(size(scaled)).toBeNull();
  });

  it("an extended WebP whose bitstream is larger than its canvas is taken at the larger size", () => {
    expect(size(webp(900, 900, { canvas: [100, 100] }))).toMatchObject({ width: 900, height: 900 });
  });

  it("never throws, and never answers a size of zero (property: random and mutated bytes)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.values(honest)),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat({ max: 5000 }),
        (bytes, flips, keep) => {
          const mutated = bytes.slice(0, Math.max(0, bytes.length - keep));
          for (const [at, value] of flips) if (mutated.length) mutated[at % mutated.length] = value;
          const got = size(mutated);
          if (got) expect(got.width > 0 && got.height > 0).toBe(true);
        },
      ),
      { numRuns: 2_000 },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => void size(bytes)));
  });
});
