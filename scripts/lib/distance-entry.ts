/**
 * The gateway as `npm run bench` serves it for its distance rounds: a checkout's own Worker with every call to a
 * KeyGuard made `BENCH_GUARD_DELAY_MS` further away (a sleep before each RPC), as if the key's Durable Object lived
 * across an ocean. Bench only: the deployed Worker has no such knob. `buildDistanceBundle` (bench-kit.ts) bundles
 * this module behind a generated entry that imports the checkout's `src/index.ts`.
 */

interface Stub {
  [method: string]: unknown;
}
interface Namespace {
  getByName(name: string): Stub;
  [other: string]: unknown;
}
interface Env {
  KEY_GUARD: Namespace;
  BENCH_GUARD_DELAY_MS?: string;
  [binding: string]: unknown;
}
interface Handlers {
  fetch(request: Request, env: Env, ctx: unknown): Response | Promise<Response>;
  queue?(batch: unknown, env: Env, ctx: unknown): Promise<void>;
  scheduled?(controller: unknown, env: Env, ctx: unknown): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A stub whose every method waits `ms` before the call goes out. */
function far(stub: Stub, ms: number): Stub {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      // Called on the stub itself after the wait: an RPC method taken off a stub is not a free function.
      return async (...args: unknown[]) => {
        await sleep(ms);
        return (target[prop as string] as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
}

const wrapped = new WeakMap<object, Env>();

/** The env with KEY_GUARD's stubs made far away; the env itself when no distance is set. */
function distant(env: Env): Env {
  const ms = Number(env.BENCH_GUARD_DELAY_MS ?? 0);
  if (!ms) return env;
  let out = wrapped.get(env);
  if (!out) {
    const ns = env.KEY_GUARD;
    const namespace = new Proxy(ns, {
      get(target, prop) {
        if (prop === "getByName") return (name: string) => far(target.getByName(name), ms);
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    out = { ...env, KEY_GUARD: namespace };
    wrapped.set(env, out);
  }
  return out;
}

export function withDistance(worker: Handlers): Handlers {
  return {
    fetch: (request, env, ctx) => worker.fetch(request, distant(env), ctx),
    ...(worker.queue ? { queue: (batch, env, ctx) => worker.queue!(batch, distant(env), ctx) } : {}),
    ...(worker.scheduled ? { scheduled: (c, env, ctx) => worker.scheduled!(c, distant(env), ctx) } : {}),
  };
}
