/**
 * Shared benchmark plumbing: run variants in interleaved rounds (so machine noise hits every
 * variant alike) and report the median per-call time of each.
 */
export interface Variant {
  name: string;
  /** One call; awaited sequentially. */
  call: () => Promise<unknown>;
}

export interface VariantResult {
  name: string;
  /** Median over rounds of the mean per-call time, in ms. */
  medianMs: number;
  /**
   * Median over rounds of this process's CPU time (every thread) per call, in ms: steadier than
   * wall time on a busy machine, and blind to work done in other processes (an upstream server).
   */
  medianCpuMs: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export async function measure(
  variants: readonly Variant[],
  options: { rounds: number; callsPerRound: number; warmupCalls: number },
): Promise<VariantResult[]> {
  for (const variant of variants) for (let i = 0; i < options.warmupCalls; i++) await variant.call();
  const perRound = new Map<string, number[]>(variants.map((variant) => [variant.name, []]));
  const cpuPerRound = new Map<string, number[]>(variants.map((variant) => [variant.name, []]));
  for (let round = 0; round < options.rounds; round++) {
    // Alternate the order each round so neither variant always runs first.
    const ordered = round % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of ordered) {
      // Let work a variant left behind (timers, background writes) finish before timing the next.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const cpuStarted = process.cpuUsage();
      const started = performance.now();
      for (let i = 0; i < options.callsPerRound; i++) await variant.call();
      perRound.get(variant.name)?.push((performance.now() - started) / options.callsPerRound);
      const cpu = process.cpuUsage(cpuStarted);
      cpuPerRound.get(variant.name)?.push((cpu.user + cpu.system) / 1000 / options.callsPerRound);
    }
  }
  return variants.map((variant) => ({
    name: variant.name,
    medianMs: median(perRound.get(variant.name) ?? []),
    medianCpuMs: median(cpuPerRound.get(variant.name) ?? []),
  }));
}

export function printComparison(
  title: string,
  baseline: VariantResult,
  candidate: VariantResult,
  targetMs?: number,
): void {
  const added = candidate.medianMs - baseline.medianMs;
  const target =
    targetMs === undefined ? "" : `  (target ≤ ${targetMs} ms: ${added <= targetMs ? "met" : "NOT met"})`;
  console.log(`\n${title}`);
  console.log(`  ${baseline.name.padEnd(34)} ${baseline.medianMs.toFixed(4)} ms/call`);
  console.log(`  ${candidate.name.padEnd(34)} ${candidate.medianMs.toFixed(4)} ms/call`);
  console.log(
    `  added per call: ${added.toFixed(4)} ms   ratio: ${(candidate.medianMs / baseline.medianMs).toFixed(3)}${target}`,
  );
}

export function numberArg(name: string, fallback: number): number {
  const flag = process.argv.find((arg) => arg.startsWith(`--${name}=`));
  return flag ? Number(flag.split("=")[1]) : fallback;
}
