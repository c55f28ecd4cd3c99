import { app } from "./app.ts";

export { KeyGuard } from "./guard/key-guard.ts";

export default { fetch: app.fetch } satisfies ExportedHandler<Env>;
