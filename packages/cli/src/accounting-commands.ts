/** `logs`, `usage`, `limits` and `allowance`: thin views over `hub.reports`. */

import { SwitchboardError } from "@switchboard/core";
import {
  formatUsd,
  type Hub,
  type LogEntry,
  nanocentsToUsd,
  reportJson,
  type UsageGrouping,
  usdToNanocents,
} from "@switchboard/hub";
import type { UsageRecord } from "@switchboard/store";
import type { Command } from "commander";
import type { CliIO } from "./io.ts";

const UNITS_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const GROUPINGS: readonly UsageGrouping[] = ["purpose", "model", "actor", "day", "hour"];

/** `30m`, `24h`, `7d`, `2w` → the instant that long ago. */
export function parseSince(text: string, now = Date.now()): Date {
  const match = /^(\d+)([mhdw])$/.exec(text.trim());
  if (!match)
    throw new SwitchboardError(
      "INVALID_INPUT",
      `--since takes a duration such as 30m, 24h, 7d or 2w (got "${text}").`,
    );
  return new Date(now - Number(match[1]) * (UNITS_MS[match[2] as string] as number));
}

function tokens(value: number | undefined): string {
  return value === undefined ? "-" : String(value);
}

function money(nanocents: bigint | undefined, unknown = "unknown"): string {
  return nanocents === undefined ? unknown : formatUsd(nanocents);
}

function describeRow(row: UsageRecord, indent = ""): string {
  const model =
    row.modelAnswered === row.modelRequested
      ? row.modelAnswered
      : `${row.modelRequested}→${row.modelAnswered}`;
  const who = [row.purpose ? `purpose=${row.purpose}` : "", row.actorId ? `actor=${row.actorId}` : ""]
    .filter(Boolean)
    .join(" ");
  const detail = `${indent}  `;
  const lines = [
    `${indent}${row.createdAt.toISOString()}  ${model}  ${who}  in=${tokens(row.inputTokens)} out=${tokens(row.outputTokens)}` +
      `${row.cachedTokens ? ` cached=${row.cachedTokens}` : ""}  ${money(row.costNanocents, "cost unknown")}  ${row.durationMs ?? "-"}ms  ${row.status}`,
  ];
  if (row.error) lines.push(`${detail}error: ${row.error}`);
  if (row.system) lines.push(`${detail}system: ${row.system}`);
  if (row.prompt !== undefined) lines.push(`${detail}prompt: ${row.prompt}`);
  if (row.response !== undefined)
    lines.push(`${detail}response: ${row.response.replace(/\n/g, `\n${detail}  `)}`);
  if (row.toolCalls) lines.push(`${detail}tool calls: ${row.toolCalls}`);
  if (row.toolResults) lines.push(`${detail}tool results: ${row.toolResults}`);
  return lines.join("\n");
}

function describeEntry(entry: LogEntry): string {
  if (entry.kind === "response") return describeRow(entry.response);
  const { steps, totals } = entry;
  const header = `chain ${entry.chainId}: ${steps.length} steps, ${money(totals.costNanocents)}`;
  return [header, ...steps.map((step) => describeRow(step, "  "))].join("\n");
}

export function addAccountingCommands(
  program: Command,
  io: CliIO,
  hubFor: (command: Command) => Promise<Hub>,
): void {
  const print = (value: unknown) => io.stdout.write(`${JSON.stringify(reportJson(value), null, 2)}\n`);

  program
    .command("logs")
    .description("Show the usage log, newest first (a tool-call chain counts as one entry)")
    .option("-n, --count <n>", "how many entries", "20")
    .option("--json", "print JSON: every response, a chain's steps together")
    .action(async (options, command: Command) => {
      const count = Number(options.count);
      if (!Number.isInteger(count) || count < 1 || count > 1000)
        throw new SwitchboardError("INVALID_INPUT", "-n takes a whole number from 1 to 1000.");
      const page = await (await hubFor(command)).reports.log({ limit: count });
      if (options.json) {
        print(
          page.entries.flatMap((entry) =>
            entry.kind === "chain" ? [...entry.steps].reverse() : [entry.response],
          ),
        );
      } else for (const entry of page.entries) io.stdout.write(`${describeEntry(entry)}\n`);
    });

  program
    .command("usage")
    .description("Tokens and cost, grouped by purpose, model, actor, day or hour")
    .option("--by <grouping>", GROUPINGS.join(", "), "purpose")
    .option("--since <duration>", "only the last 30m, 24h, 7d…")
    .option("--purpose <purpose>", "only this purpose")
    .option("--model <model>", "only responses this model answered")
    .option("--actor <actor>", "only this actor")
    .option("--json", "print JSON")
    .action(async (options, command: Command) => {
      const by = options.by as UsageGrouping;
      if (!GROUPINGS.includes(by)) {
        throw new SwitchboardError("INVALID_INPUT", `--by takes ${GROUPINGS.join(", ")} (got "${by}").`);
      }
      const report = await (await hubFor(command)).reports.usage({
        by,
        since: options.since ? parseSince(options.since) : undefined,
        purpose: options.purpose,
        model: options.model,
        actorId: options.actor,
      });
      if (options.json) {
        print(
          report.groups.map((group) => ({
            ...group,
            costUsd: group.costNanocents === undefined ? null : nanocentsToUsd(group.costNanocents),
          })),
        );
        return;
      }
      const line = (label: string, totals: (typeof report)["totals"]) =>
        `${label.padEnd(24)} ${String(totals.responses).padStart(9)} ${tokens(totals.inputTokens).padStart(10)} ` +
        `${tokens(totals.outputTokens).padStart(10)} ${tokens(totals.cachedTokens).padStart(8)} ` +
        `${money(totals.costNanocents).padStart(12)}\n`;
      io.stdout.write(
        `${by.padEnd(24)} ${"responses".padStart(9)} ${"input".padStart(10)} ${"output".padStart(10)} ${"cached".padStart(8)} ${"cost".padStart(12)}\n`,
      );
      for (const group of report.groups) io.stdout.write(line(group[by] ?? "(none)", group));
      if (report.groups.length > 1) io.stdout.write(line("total", report.totals));
    });

  program
    .command("limits")
    .description("Each configured limit: used, held, left, reset")
    .option("--actor <actor>", "one actor's standing in actor-scoped limits")
    .option("--json", "print JSON")
    .action(async (options, command: Command) => {
      const report = await (await hubFor(command)).reports.limits({ actorId: options.actor });
      if (options.json) {
        print(
          report.map((row) => ({
            limit: row.limit,
            scope: row.scope,
            actor: row.actorId,
            window: row.window,
            purpose: row.purpose,
            model: row.model,
            used: formatUsd(row.used),
            held: formatUsd(row.held),
            remaining: formatUsd(row.left),
            cap: formatUsd(row.cap),
            reset: row.reset,
            resetsAt: row.resetsAt,
            nanocents: { used: row.used, held: row.held, remaining: row.left, cap: row.cap },
          })),
        );
      } else if (report.length === 0)
        io.stdout.write("No limits configured (add `limits:` to switchboard.yaml).\n");
      else {
        for (const row of report) {
          const who = row.actorId ? ` actor ${row.actorId}` : "";
          const held = row.held > 0n ? ` (${formatUsd(row.held)} held by prompts in flight)` : "";
          io.stdout.write(
            `${row.limit}${who}: ${formatUsd(row.used)} used${held} of ${formatUsd(row.cap)}, ${formatUsd(row.left)} left (${row.window}; ${row.reset})\n`,
          );
        }
      }
    });

  const allowance = program.command("allowance").description("Refillable balances per actor");
  allowance
    .command("topup")
    .description("Add USD to an actor's balance")
    .argument("<actor>")
    .argument("<usd>")
    .action(async (actor: string, usd: string, _options, command: Command) => {
      const amount = Number(usd);
      if (!Number.isFinite(amount) || amount <= 0)
        throw new SwitchboardError("INVALID_INPUT", `USD must be a positive amount (got "${usd}").`);
      const standing = await (await hubFor(command)).reports.topUpAllowance(actor, usdToNanocents(amount), {
        note: "switchboard allowance topup",
      });
      io.stdout.write(`${actor}: balance ${formatUsd(standing.balance)}\n`);
    });
  allowance
    .command("show")
    .description("Show an actor's balance")
    .argument("<actor>")
    .option("--json", "print JSON")
    .action(async (actor: string, options, command: Command) => {
      const found = await (await hubFor(command)).reports.allowance(actor);
      const balance = found?.balance ?? 0n;
      const held = found?.held ?? 0n;
      if (options.json)
        io.stdout.write(
          `${JSON.stringify({ actor, balance: formatUsd(balance), balanceNanocents: balance.toString(), heldNanocents: held.toString() })}\n`,
        );
      else
        io.stdout.write(
          `${actor}: balance ${formatUsd(balance)}${held > 0n ? ` (${formatUsd(held)} held by prompts in flight)` : ""}${found ? "" : " (no allowance yet)"}\n`,
        );
    });
}
