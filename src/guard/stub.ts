import type { KeyGuard } from "./key-guard.ts";

/** The KeyGuard of a spend key: one Durable Object per key, addressed by the key's public id. */
export function keyGuard(
  env: { KEY_GUARD: DurableObjectNamespace<KeyGuard> },
  spendKeyId: string,
): DurableObjectStub<KeyGuard> {
  return env.KEY_GUARD.getByName(spendKeyId);
}
