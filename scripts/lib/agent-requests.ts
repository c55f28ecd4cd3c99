/**
 * Requests shaped like the ones coding agents send, for the hold tests and `npm run bench:fit`: Claude Code
 * (Messages: a long cached system prompt, ~15 client tools, thinking, betas, pasted screenshots and documents) and
 * Codex (Responses: instructions, function tools, reasoning, images). Contents are filler of realistic sizes.
 */

export interface AgentRequest {
  path: "/v1/messages" | "/v1/responses" | "/v1/chat/completions";
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** Deterministic prose of `bytes` bytes (ASCII), different per seed. */
export function prose(bytes: number, seed = 0): string {
  const words = "the agent reads files edits code runs tests and reports what changed in the repository".split(" ");
  let out = "";
  for (let i = seed; out.length < bytes; i++) out += `${words[(i * 7) % words.length]} `;
  return out.slice(0, bytes);
}

/** A client tool as Claude Code defines one: a name, a paragraph of description, a JSON schema. */
function claudeTool(i: number) {
  return {
    name: `Tool${i}`,
    description: prose(380, i),
    input_schema: {
      type: "object",
      properties: {
        path: { type: "string", description: "The absolute path to the file" },
        content: { type: "string", description: prose(60, i + 1) },
      },
      required: ["path"],
      additionalProperties: false,
      $schema: "http://json-schema.org/draft-07/schema#",
    },
  };
}

export const CLAUDE_CODE_BETAS =
  "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14";
export const CONTEXT_1M = "context-1m-2025-08-07";

export interface ClaudeCodeOptions {
  model?: string;
  maxTokens?: number;
  /** the cached system prompt's size, bytes (30 KB: Claude Code's own prompt and a CLAUDE.md) */
  systemBytes?: number;
  tools?: number;
  /** earlier turns of the conversation as text, bytes */
  historyBytes?: number;
  betas?: string[];
  /** extra content blocks of the last user message (an image, a document) */
  attach?: unknown[];
  /** server tools appended to the client ones */
  serverTools?: unknown[];
  thinking?: number;
  /** text put in the last user message (markers for the fake provider) */
  note?: string;
}

export function claudeCode(o: ClaudeCodeOptions = {}): AgentRequest {
  const history = o.historyBytes
    ? [
        { role: "user", content: [{ type: "text", text: prose(o.historyBytes / 2, 3) }] },
        { role: "assistant", content: [{ type: "text", text: prose(o.historyBytes / 2, 4) }] },
      ]
    : [];
  const body: Record<string, unknown> = {
    model: o.model ?? "claude-sonnet-4-5-20250929",
    max_tokens: o.maxTokens ?? 32_000,
    stream: true,
    system: [
      { type: "text", text: "You are Claude Code, Anthropic's official CLI for Claude." },
      { type: "text", text: prose(o.systemBytes ?? 30_000, 1), cache_control: { type: "ephemeral" } },
    ],
    tools: [...Array.from({ length: o.tools ?? 15 }, (_, i) => claudeTool(i)), ...(o.serverTools ?? [])],
    messages: [
      ...history,
      {
        role: "user",
        content: [
          ...(o.attach ?? []),
          { type: "text", text: `<system-reminder>${prose(600, 9)}</system-reminder>` },
          { type: "text", text: `hi ${o.note ?? ""}`, cache_control: { type: "ephemeral" } },
        ],
      },
    ],
    metadata: { user_id: "user_0123456789abcdef_account__session_00000000-0000-0000-0000-000000000000" },
  };
  if (o.thinking) body.thinking = { type: "enabled", budget_tokens: o.thinking };
  const betas = o.betas ?? [CLAUDE_CODE_BETAS];
  return {
    path: "/v1/messages",
    headers: { "anthropic-version": "2023-06-01", "anthropic-beta": betas.join(",") },
    body,
  };
}

/** An Anthropic image block carrying `bytes` as base64. */
export const anthropicImage = (b64: string, mediaType = "image/png") => ({
  type: "image",
  source: { type: "base64", media_type: mediaType, data: b64 },
});

/** An Anthropic PDF document block. */
export const anthropicPdf = (b64: string) => ({
  type: "document",
  source: { type: "base64", media_type: "application/pdf", data: b64 },
});

export interface CodexOptions {
  model?: string;
  instructionsBytes?: number;
  historyBytes?: number;
  /** extra content parts of the user message (an input_image) */
  attach?: unknown[];
  webSearch?: boolean;
  maxOutputTokens?: number;
  note?: string;
}

/** A Codex-shaped Responses request: long instructions, shell/apply_patch/plan tools, reasoning, no storage. */
export function codex(o: CodexOptions = {}): AgentRequest {
  const fn = (name: string, i: number) => ({
    type: "function",
    name,
    description: prose(300, i),
    strict: false,
    parameters: { type: "object", properties: { command: { type: "array", items: { type: "string" } } } },
  });
  const body: Record<string, unknown> = {
    model: o.model ?? "gpt-5.4",
    instructions: prose(o.instructionsBytes ?? 22_000, 5),
    input: [
      { type: "message", role: "developer", content: [{ type: "input_text", text: prose(1_500, 6) }] },
      ...(o.historyBytes
        ? [{ type: "message", role: "user", content: [{ type: "input_text", text: prose(o.historyBytes, 7) }] }]
        : []),
      {
        type: "message",
        role: "user",
        content: [...(o.attach ?? []), { type: "input_text", text: `fix the failing test ${o.note ?? ""}` }],
      },
    ],
    tools: [
      fn("shell", 1),
      fn("apply_patch", 2),
      fn("update_plan", 3),
      fn("view_image", 4),
      ...(o.webSearch ? [{ type: "web_search" }] : []),
    ],
    tool_choice: "auto",
    parallel_tool_calls: false,
    reasoning: { effort: "medium", summary: "auto" },
    store: false,
    stream: true,
    include: ["reasoning.encrypted_content"],
    prompt_cache_key: "00000000-0000-0000-0000-000000000000",
  };
  if (o.maxOutputTokens) body.max_output_tokens = o.maxOutputTokens;
  return { path: "/v1/responses", headers: {}, body };
}

/** A Responses image part (a data URL or an https URL). */
export const responsesImage = (url: string, detail = "auto") => ({ type: "input_image", image_url: url, detail });
