import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { DashboardEnv } from "./env.ts";
import { Page } from "./layout.tsx";

/** A page, 200 unless said otherwise. */
export const page = (
  c: Context<DashboardEnv>,
  title: string,
  body: Child,
  status: 200 | 400 | 403 | 404 | 429 = 200,
) => {
  const s = c.get("session") as DashboardEnv["Variables"]["session"] | undefined;
  const notice = (c.get("flash") as DashboardEnv["Variables"]["flash"] | undefined)?.notice;
  return c.html(
    <Page
      title={title}
      current={`/${c.req.path.split("/")[1]}`}
      {...(s ? { csrf: s.csrf } : {})}
      {...(notice ? { notice } : {})}
    >
      {body}
    </Page>,
    status,
  );
};
