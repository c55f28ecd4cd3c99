import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createFakeProvider, type FakeProviderOptions } from "./handler.ts";

/** Serves the fake provider over HTTP/1.1 with keep-alive (for dev, the demo, conformance and the benchmark). */
export async function startFakeProvider(port = 0, options: FakeProviderOptions = {}) {
  const fake = createFakeProvider(options);
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const body = chunks.length ? Buffer.concat(chunks) : undefined;
    const request = new Request(`http://${req.headers.host ?? "fake"}${req.url}`, {
      method: req.method,
      headers,
      body,
      signal: abort.signal,
    });
    let response: Response;
    try {
      response = await fake.handle(request);
    } catch (err) {
      res.writeHead(500).end(String(err));
      return;
    }
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (!response.body) return res.end();
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        res.write(value);
      }
      res.end();
    } catch {
      // A "connection reset" fault: let what was written reach the client, then reset the socket (RST).
      for (let i = 0; i < 20 && res.writableLength > 0; i++) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 20));
      if (res.socket) res.socket.resetAndDestroy();
      else res.destroy();
    }
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    recorded: fake.recorded,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
