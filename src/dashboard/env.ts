import type { BaseVariables, Bindings } from "../env.ts";

/** A signed-in dashboard session (session.ts). */
export interface Session {
  walletId: string;
  /** the value every state-changing form must carry */
  csrf: string;
}

/** The dashboard's pages: a signed-in session, and a POST's form parsed once by the sign-in check. */
export interface DashboardEnv {
  Bindings: Bindings;
  Variables: BaseVariables & {
    session: Session;
    form: Record<string, string | File | (string | File)[]>;
    /** what the previous POST left for this page (flash.ts), read once */
    flash: Flash | null;
  };
}

/** What one page tells the next over a redirect (flash.ts): a confirmation, and a secret to show once. */
export interface Flash {
  notice?: string;
  /** a secret shown once: a new or rotated spend key, or a webhook's signing secret */
  secret?: { kind: "key" | "rotated" | "webhook"; id: string; value: string };
}
