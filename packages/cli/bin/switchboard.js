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
// A closed pipe (`switchboard … | head`) is the reader's choice, not an error.
process.stdout.on("error", (error) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});
const { main } = await import("../src/main.ts");
process.exitCode = await main(process.argv.slice(2));
