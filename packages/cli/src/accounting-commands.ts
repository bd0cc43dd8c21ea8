/** `logs`, `usage`, `limits` and `allowance`: reading the usage log and the budgets. */

import { SwitchboardError } from "@switchboard/core";
import { formatUsd, type Hub, limitKey, usdToNanocents, windowReset, windowStart } from "@switchboard/hub";
import type { UsageRecord } from "@switchboard/store";
import type { Command } from "commander";
import type { CliIO } from "./io.ts";

const UNITS_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

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

/** JSON cannot hold bigint: money goes out as a nanocent string plus USD. */
function jsonSafe(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_key, item) => (typeof item === "bigint" ? item.toString() : item)),
  );
}

function tokens(value: number | undefined): string {
  return value === undefined ? "-" : String(value);
}

function describeRow(row: UsageRecord): string {
  const model =
    row.modelAnswered === row.modelRequested
      ? row.modelAnswered
      : `${row.modelRequested}→${row.modelAnswered}`;
  const cost = row.costNanocents === undefined ? "cost unknown" : formatUsd(row.costNanocents);
  const who = [row.purpose ? `purpose=${row.purpose}` : "", row.actorId ? `actor=${row.actorId}` : ""]
    .filter(Boolean)
    .join(" ");
  const lines = [
    `${row.createdAt.toISOString()}  ${model}  ${who}  in=${tokens(row.inputTokens)} out=${tokens(row.outputTokens)}` +
      `${row.cachedTokens ? ` cached=${row.cachedTokens}` : ""}  ${cost}  ${row.durationMs ?? "-"}ms  ${row.status}`,
  ];
  if (row.error) lines.push(`  error: ${row.error}`);
  if (row.system) lines.push(`  system: ${row.system}`);
  if (row.prompt !== undefined) lines.push(`  prompt: ${row.prompt}`);
  if (row.response !== undefined) lines.push(`  response: ${row.response.replace(/\n/g, "\n    ")}`);
  if (row.toolCalls) lines.push(`  tool calls: ${row.toolCalls}`);
  if (row.toolResults) lines.push(`  tool results: ${row.toolResults}`);
  return lines.join("\n");
}

export function addAccountingCommands(
  program: Command,
  io: CliIO,
  hubFor: (command: Command) => Promise<Hub>,
): void {
  program
    .command("logs")
    .description("Show the usage log, newest first")
    .option("-n, --count <n>", "how many responses", "20")
    .option("--json", "print JSON")
    .action(async (options, command: Command) => {
      const count = Number(options.count);
      if (!Number.isInteger(count) || count < 1)
        throw new SwitchboardError("INVALID_INPUT", "-n takes a whole number of 1 or more.");
      const rows = await (await (await hubFor(command)).store()).listUsage({ limit: count });
      if (options.json) io.stdout.write(`${JSON.stringify(jsonSafe(rows), null, 2)}\n`);
      else for (const row of rows) io.stdout.write(`${describeRow(row)}\n`);
    });

  program
    .command("usage")
    .description("Tokens and cost, grouped by purpose, model or actor")
    .option("--by <dimension>", "purpose, model or actor", "purpose")
    .option("--since <duration>", "only the last 30m, 24h, 7d…")
    .option("--json", "print JSON")
    .action(async (options, command: Command) => {
      const by = options.by as string;
      if (by !== "purpose" && by !== "model" && by !== "actor") {
        throw new SwitchboardError("INVALID_INPUT", `--by takes purpose, model or actor (got "${by}").`);
      }
      const since = options.since ? parseSince(options.since) : undefined;
      const rows = await (await (await hubFor(command)).store()).summarizeUsage({
        by,
        ...(since ? { since } : {}),
      });
      if (options.json) {
        io.stdout.write(
          `${JSON.stringify(jsonSafe(rows.map((row) => ({ ...row, costUsd: row.costNanocents === undefined ? null : Number(row.costNanocents) / 1e11 }))), null, 2)}\n`,
        );
        return;
      }
      io.stdout.write(
        `${by.padEnd(24)} ${"responses".padStart(9)} ${"input".padStart(10)} ${"output".padStart(10)} ${"cached".padStart(8)} ${"cost".padStart(12)}\n`,
      );
      for (const row of rows) {
        io.stdout.write(
          `${(row.key ?? "(none)").padEnd(24)} ${String(row.responses).padStart(9)} ${tokens(row.inputTokens).padStart(10)} ` +
            `${tokens(row.outputTokens).padStart(10)} ${tokens(row.cachedTokens).padStart(8)} ` +
            `${(row.costNanocents === undefined ? "unknown" : formatUsd(row.costNanocents)).padStart(12)}\n`,
        );
      }
    });

  program
    .command("limits")
    .description("Each configured limit: used, remaining, reset")
    .option("--json", "print JSON")
    .action(async (options, command: Command) => {
      const hub = await hubFor(command);
      const store = await hub.store();
      const now = new Date();
      const report: Record<string, unknown>[] = [];
      for (const [name, limit] of Object.entries(hub.config.limits ?? {})) {
        const start = windowStart(limit.window, now);
        const cap = usdToNanocents(limit.amount_usd);
        const spending =
          limit.scope === "instance"
            ? [
                {
                  key: limitKey(name, limit, undefined),
                  spent: await store.spentInWindow(limitKey(name, limit, undefined), start),
                },
              ]
            : await store.spentByKey(`limit:${name}:actor:`, start);
        for (const { key, spent } of spending) {
          const actor = limit.scope === "actor" ? key.slice(`limit:${name}:actor:`.length) : undefined;
          report.push({
            limit: name,
            scope: limit.scope,
            ...(actor ? { actor } : {}),
            window: limit.window,
            ...(limit.purpose ? { purpose: limit.purpose } : {}),
            ...(limit.model ? { model: limit.model } : {}),
            used: formatUsd(spent),
            remaining: formatUsd(spent > cap ? 0n : cap - spent),
            cap: formatUsd(cap),
            reset: windowReset(limit.window, now),
          });
        }
        if (spending.length === 0) {
          report.push({
            limit: name,
            scope: limit.scope,
            window: limit.window,
            used: "$0.00",
            remaining: formatUsd(cap),
            cap: formatUsd(cap),
            reset: windowReset(limit.window, now),
          });
        }
      }
      if (options.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else if (report.length === 0)
        io.stdout.write("No limits configured (add `limits:` to switchboard.yaml).\n");
      else {
        for (const row of report) {
          const who = row.actor ? ` actor ${row.actor}` : "";
          io.stdout.write(
            `${row.limit}${who}: ${row.used} used of ${row.cap}, ${row.remaining} left (${row.window}; ${row.reset})\n`,
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
      const balance = await (await (await hubFor(command)).store()).topUpAllowance(
        actor,
        usdToNanocents(amount),
        "switchboard allowance topup",
      );
      io.stdout.write(`${actor}: balance ${formatUsd(balance)}\n`);
    });
  allowance
    .command("show")
    .description("Show an actor's balance")
    .argument("<actor>")
    .option("--json", "print JSON")
    .action(async (actor: string, options, command: Command) => {
      const found = await (await (await hubFor(command)).store()).getAllowance(actor);
      const balance = found?.balance ?? 0n;
      if (options.json)
        io.stdout.write(
          `${JSON.stringify({ actor, balance: formatUsd(balance), balanceNanocents: balance.toString() })}\n`,
        );
      else io.stdout.write(`${actor}: balance ${formatUsd(balance)}${found ? "" : " (no allowance yet)"}\n`);
    });
}
