import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../env.ts";
import { Page } from "./layout.tsx";

/** A page, 200 unless said otherwise. */
export const page = (c: Context<AppEnv>, title: string, body: Child, status: 200 | 400 | 403 | 404 | 429 = 200) => {
  const s = c.get("session") as AppEnv["Variables"]["session"] | undefined;
  return c.html(
    <Page title={title} current={`/${c.req.path.split("/")[1]}`} {...(s ? { csrf: s.csrf } : {})}>
      {body}
    </Page>,
    status,
  );
};
