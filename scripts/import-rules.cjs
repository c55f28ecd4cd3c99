/**
 * The layers of `src/`, top to bottom; an import only points down or sideways within its own layer's module
 * (`npm run lint` runs `depcruise --config scripts/import-rules.cjs src`). docs/architecture.md draws them.
 *
 *   entry       src/index.ts, src/app.ts
 *   routes      src/gateway, src/management, src/admin, src/dashboard, src/webhooks/routes.ts — no family imports another
 *   services    src/guard, src/bookkeeping, src/catalog, src/wallets, src/webhooks (but routes.ts)
 *   domain      src/keys, src/lib, src/env.ts (the app's base environment)
 *   platform    src/db, src/config.ts, src/providers
 */
const FAMILIES = ["gateway", "management", "admin", "dashboard"];
const ROUTES = "^src/(gateway|management|admin|dashboard)/|^src/webhooks/(routes|schemas)\\.ts$";
const SERVICES = "^src/(guard|bookkeeping|catalog|wallets)/|^src/webhooks/(?!routes|schemas)";
const DOMAIN = "^src/(keys|lib)/|^src/env\\.ts$";
const PLATFORM = "^src/(db|providers)/|^src/config\\.ts$";

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
    ...FAMILIES.map((family) => ({
      name: `route-family-${family}-stands-alone`,
      comment: "A route family never imports another (shared pieces live in src/lib or a service).",
      severity: "error",
      from: { path: `^src/${family}/` },
      to: { path: ROUTES, pathNot: `^src/${family}/` },
    })),
    {
      name: "webhook-routes-stand-alone",
      severity: "error",
      from: { path: "^src/webhooks/(routes|schemas)\\.ts$" },
      to: { path: "^src/(gateway|management|admin|dashboard)/" },
    },
    {
      name: "services-below-routes",
      severity: "error",
      from: { path: SERVICES },
      to: { path: `${ROUTES}|^src/(index|app)\\.ts$` },
    },
    {
      name: "domain-below-services",
      severity: "error",
      from: { path: DOMAIN },
      to: { path: `${ROUTES}|${SERVICES}|^src/(index|app)\\.ts$` },
    },
    {
      name: "platform-at-the-bottom",
      severity: "error",
      from: { path: PLATFORM },
      to: { path: `${ROUTES}|${SERVICES}|${DOMAIN}|^src/(index|app)\\.ts$` },
    },
    {
      name: "src-stands-alone",
      comment: "The Worker never imports tests or scripts.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|scripts)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.gen\\.json$" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".tsx", ".js", ".json"] },
  },
};
