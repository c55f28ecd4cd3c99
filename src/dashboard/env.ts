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
  };
}
