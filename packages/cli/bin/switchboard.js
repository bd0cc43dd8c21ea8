#!/usr/bin/env node
// Switchboard runs its TypeScript sources directly (Node's type stripping), which needs Node ≥ 22.18.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `Error: switchboard needs Node 22.18 or newer (this is ${process.versions.node}). ` +
      "Run it with 'npx switchboard' inside the project, which uses the bundled Node 24.\n",
  );
  process.exit(1);
}
// Caches compiled sources (and their stripped types) between runs: cuts start-up to a third.
const { enableCompileCache } = await import("node:module");
enableCompileCache?.();
const { runCli } = await import("../src/main.ts");
await runCli();
