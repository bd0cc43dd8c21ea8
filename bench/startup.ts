/**
 * Start-up cost of the `switchboard` command: median wall time and peak memory (RSS) over N runs
 * of `switchboard prompt -m echo hi`, next to `node -e ""` as the floor. Each run is a fresh
 * process with its own user directory, so the SQLite usage log is created and written each time.
 * Run with `npm run bench:startup` (options: --runs=N; --compare=PATH adds the same prompt run
 * through another checkout's `packages/cli/bin/switchboard.js`, e.g. an older commit's).
 */

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { numberArg } from "./measure.ts";

const runs = numberArg("runs", 10);
const bin = new URL("../packages/cli/bin/switchboard.js", import.meta.url).pathname;
/** GNU time reports the peak RSS of the whole process (every thread); without it the child reports its own. */
const GNU_TIME = "/usr/bin/time";
const useGnuTime = existsSync(GNU_TIME);
/** Fallback: the child prints `process.resourceUsage().maxRSS` (KiB) on fd 3 as it exits. */
const REPORT_RSS =
  'data:text/javascript,import{writeSync}from"node:fs";process.on("exit",()=>writeSync(3,String(process.resourceUsage().maxRSS)))';

interface Sample {
  wallMs: number;
  /** User + system CPU time; steadier than wall time on a busy machine. */
  cpuMs: number | undefined;
  peakRssMb: number;
}

function runOnce(args: readonly string[], env: NodeJS.ProcessEnv): Sample {
  const command = useGnuTime ? GNU_TIME : process.execPath;
  const argv = useGnuTime ? ["-f", "%M %U %S", process.execPath, ...args] : ["--import", REPORT_RSS, ...args];
  const started = performance.now();
  const result = spawnSync(command, argv, {
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe", ...(useGnuTime ? [] : ["pipe" as const])],
  });
  const wallMs = performance.now() - started;
  if (result.status !== 0) throw new Error(`${args.join(" ")} failed: ${result.stderr}`);
  if (!useGnuTime) return { wallMs, cpuMs: undefined, peakRssMb: Number(result.output[3]) / 1024 };
  // GNU time prints its figures as the last line of stderr.
  const [rssKb, user, system] = (result.stderr.trim().split("\n").at(-1) ?? "").split(" ").map(Number);
  return { wallMs, cpuMs: ((user ?? 0) + (system ?? 0)) * 1000, peakRssMb: (rssKb ?? 0) / 1024 };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

const userDir = mkdtempSync(join(tmpdir(), "switchboard-bench-startup-"));
const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_USER_PATH: userDir };
delete env.SWITCHBOARD_CONFIG;

const compareBin = process.argv.find((arg) => arg.startsWith("--compare="))?.slice("--compare=".length);
const variants = [
  { name: 'node -e ""', args: ["-e", ""] },
  { name: "switchboard prompt -m echo hi", args: [bin, "prompt", "-m", "echo", "hi"] },
  ...(compareBin
    ? [{ name: "  the same, --compare bin", args: [compareBin, "prompt", "-m", "echo", "hi"] }]
    : []),
];
// One unmeasured run fills Node's compile cache, as any earlier use of the command would have.
for (const variant of variants) runOnce(variant.args, env);
const samples = new Map<string, Sample[]>(variants.map((variant) => [variant.name, []]));
for (let run = 0; run < runs; run++) {
  for (const variant of run % 2 === 0 ? variants : [...variants].reverse()) {
    samples.get(variant.name)?.push(runOnce(variant.args, env));
  }
}
rmSync(userDir, { recursive: true, force: true });

console.log(`Start-up over ${runs} runs each (peak RSS from ${useGnuTime ? GNU_TIME : "the child"})`);
console.log(
  `  ${"command".padEnd(32)} ${"median wall".padStart(12)} ${"median CPU".padStart(11)} ${"median peak RSS".padStart(16)}`,
);
for (const variant of variants) {
  const measured = samples.get(variant.name) ?? [];
  const wall = median(measured.map((sample) => sample.wallMs));
  const rss = median(measured.map((sample) => sample.peakRssMb));
  const cpu = useGnuTime
    ? `${(median(measured.map((sample) => sample.cpuMs ?? 0)) / 1000).toFixed(2)} s`
    : "n/a";
  console.log(
    `  ${variant.name.padEnd(32)} ${`${(wall / 1000).toFixed(3)} s`.padStart(12)} ${cpu.padStart(11)} ${`${rss.toFixed(0)} MB`.padStart(16)}`,
  );
}
console.log("  target for switchboard: ≤ 0.200 s and ≤ 80 MB");
