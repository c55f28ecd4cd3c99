import type { RouteKind } from "../providers/registry.ts";
import { base64Reader, dataUrlReader } from "./byte-reader.ts";
import { imageSize } from "./image-size.ts";
import { type ImageFamily, imageTokens } from "./image-tokens.ts";

/**
 * The images and text documents of a request, found only where its API reads them as such (a message's content
 * parts, a tool result's), and what they can be billed. An image is billed by its pixels, not by the base64 text
 * that carries it, so its inline data leaves the body's byte count and its tokens are added instead; a text
 * document is text of the body, bounded by its bytes like the rest. Anything else (PDFs, audio, file ids of
 * other kinds, an image the family has no rule for, an image anywhere else) is left for the context-window bound.
 */
export interface MediaInput {
  /** input tokens the images can be billed, each by its family's rules */
  imageTokens: number;
  /** characters of inline image data (base64 and data URLs) that the provider decodes rather than reads as text */
  inlineChars: number;
  images: number;
  /** the content blocks accounted for: the search for input the body does not hold passes over them */
  accounted: Set<object>;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const each = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isObject) : []);

export function mediaInput(kind: RouteKind, json: Json, family: ImageFamily | null): MediaInput {
  const found: MediaInput = { imageTokens: 0, inlineChars: 0, images: 0, accounted: new Set() };
  const image = (block: Json, data: string | null, reader: ReturnType<typeof base64Reader>, detail: unknown) => {
    if (!family) return;
    const size = reader ? imageSize(reader) : null;
    found.imageTokens += imageTokens(family, size, detail);
    found.inlineChars += data?.length ?? 0;
    found.images++;
    found.accounted.add(block);
  };

  if (kind === "messages" || kind === "count_tokens") {
    const anthropicBlock = (block: Json, depth: number): void => {
      const source = block.source;
      if (block.type === "image" && isObject(source)) {
        if (source.type === "base64" && typeof source.data === "string") {
          image(block, source.data, base64Reader(source.data), null);
        } else if (
          (source.type === "url" && typeof source.url === "string") ||
          (source.type === "file" && typeof source.file_id === "string")
        ) {
          image(block, null, null, null);
        }
      } else if (block.type === "document" && isObject(source) && depth < 2) {
        // A plain-text document is text of the body; a content document holds text and image blocks.
        if (source.type === "text" && typeof source.data === "string") found.accounted.add(block);
        else if (source.type === "content" && Array.isArray(source.content)) {
          found.accounted.add(block);
          for (const inner of each(source.content)) anthropicBlock(inner, depth + 1);
        }
      } else if (block.type === "tool_result" && depth === 0) {
        // A tool result's content: text, images and documents, as a message's.
        for (const inner of each(block.content)) anthropicBlock(inner, depth + 1);
      }
    };
    for (const message of each(json.messages)) for (const block of each(message.content)) anthropicBlock(block, 0);
  } else if (kind === "chat") {
    for (const message of each(json.messages)) {
      for (const part of each(message.content)) {
        const img = part.image_url;
        if (part.type !== "image_url" || !isObject(img) || typeof img.url !== "string") continue;
        const inline = img.url.startsWith("data:");
        image(part, inline ? img.url : null, inline ? dataUrlReader(img.url) : null, img.detail);
      }
    }
  } else if (kind === "responses") {
    /** An input image part; `block` is the object to account for (a screenshot's is the output object). */
    const part = (p: Json, block: Json = p) => {
      if (p.type !== "input_image") return;
      if (typeof p.image_url === "string" && p.file_id == null) {
        const inline = p.image_url.startsWith("data:");
        image(block, inline ? p.image_url : null, inline ? dataUrlReader(p.image_url) : null, p.detail);
      } else if (typeof p.file_id === "string" && p.image_url == null) {
        image(block, null, null, p.detail);
      }
    };
    for (const item of each(json.input)) {
      for (const p of each(item.content)) part(p);
      if (item.type === "function_call_output") for (const p of each(item.output)) part(p);
      // A computer-use screenshot is an image by URL or file id too.
      const shot = item.output;
      if (item.type === "computer_call_output" && isObject(shot) && shot.type === "computer_screenshot") {
        part({ ...shot, type: "input_image" }, shot);
      }
    }
  }
  return found;
}
