import { describe, expect, it } from "vitest";
import { chat, json, setupKey } from "./helpers.ts";

describe("smoke", () => {
  it("proxies a chat completion through a spend key", async () => {
    const { key } = await setupKey();
    const res = await chat(key);
    const body = await json(res, 200);
    expect(body.object).toBe("chat.completion");
  });
});
