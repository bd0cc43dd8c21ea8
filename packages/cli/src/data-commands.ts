/**
 * `enrich`, `jobs`, `extract` and `ask`: the data tools on the command line. The CLI acts as
 * `--actor` (default: the OS user) with full permission; every prompt carries that actor.
 */
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { extname } from "node:path";
import { SwitchboardError } from "@switchboard/core";
import {
  dataPlugins,
  type EnrichmentJob,
  Enrichments,
  type ExtractInput,
  Extraction,
  isInterrupted,
  type JobProgress,
  type JobRun,
  parseField,
  SqlAssistant,
} from "@switchboard/data";
import { type Actor, type Hub, openHub, usdToNanocents } from "@switchboard/hub";
import { type Command, InvalidArgumentError } from "commander";
import { type CliIO, readAll } from "./io.ts";

const IMAGE_TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
};

/** How often a terminal progress bar is redrawn, and a plain progress line printed otherwise. */
const BAR_REDRAW_MS = 100;
const PLAIN_LINE_MS = 2_000;

function wholeNumber(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError("expected a whole number.");
  return number;
}

function usdAmount(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0)
    throw new InvalidArgumentError("expected an amount in USD, e.g. 0.50.");
  return number;
}

function jobId(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1)
    throw new InvalidArgumentError("expected a job id (a number).");
  return number;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The OS user, so usage and budgets show who ran a command. */
function defaultActorId(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? env.USERNAME ?? "cli";
  }
}

function actorFrom(options: { actor?: string }, io: CliIO): Actor {
  return { id: options.actor ?? defaultActorId(io.env) };
}

function usd(nanocents: bigint): string {
  const value = Number(nanocents) / Number(usdToNanocents(1));
  return `$${value >= 1 ? value.toFixed(2) : value.toFixed(4)}`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  return minutes > 0 ? `${minutes}m${String(whole % 60).padStart(2, "0")}s` : `${whole}s`;
}

/** JSON cannot hold bigint: money goes out as a nanocent string plus USD. */
function jobJson(job: EnrichmentJob): Record<string, unknown> {
  return {
    ...job,
    costNanocents: job.costNanocents.toString(),
    costUsd: Number(job.costNanocents) / Number(usdToNanocents(1)),
    maxCostNanocents: job.maxCostNanocents?.toString() ?? null,
    interrupted: isInterrupted(job),
  };
}

async function withHub<T>(command: Command, io: CliIO, body: (hub: Hub) => Promise<T>): Promise<T> {
  const globals = command.optsWithGlobals() as { config?: string };
  const options: Parameters<typeof openHub>[0] & { storeOptions?: { usageWriterThread?: boolean } } = {
    ...(globals.config ? { configPath: globals.config } : {}),
    env: io.env,
    plugins: dataPlugins(),
    // SQLite usage rows are cheap to write on the main thread even at hundreds of rows a second;
    // a writer thread would add a second V8 heap (about 45 MB) to every data command.
    storeOptions: { usageWriterThread: false },
  };
  const hub = await openHub(options);
  try {
    return await body(hub);
  } finally {
    await hub.close();
  }
}

/** Draws progress: a bar redrawn in place on a terminal, a plain line every few seconds otherwise. */
function progressReporter(io: CliIO): { update: (progress: JobProgress) => void; end: () => void } {
  const terminal = (io.stderr as { isTTY?: boolean }).isTTY === true;
  let lastDraw = 0;
  let drawn = false;
  const describe = (progress: JobProgress) => {
    const finished = progress.done + progress.errors;
    const eta = progress.etaSeconds === undefined ? "ETA ?" : `ETA ${duration(progress.etaSeconds)}`;
    const errors = progress.errors > 0 ? `  ${progress.errors} errors` : "";
    return `${finished}/${progress.total} rows  ${progress.rowsPerSecond.toFixed(1)} rows/s  ${eta}  ${usd(progress.costNanocents)}${errors}`;
  };
  return {
    update(progress) {
      const now = Date.now();
      if (terminal) {
        if (now - lastDraw < BAR_REDRAW_MS && progress.status === "running") return;
        const width = 24;
        const share =
          progress.total > 0 ? Math.min(1, (progress.done + progress.errors) / progress.total) : 1;
        const filled = Math.round(share * width);
        io.stderr.write(`\r\x1b[K[${"#".repeat(filled)}${".".repeat(width - filled)}] ${describe(progress)}`);
        drawn = true;
      } else {
        if (now - lastDraw < PLAIN_LINE_MS && progress.status === "running") return;
        io.stderr.write(`job ${progress.jobId}: ${describe(progress)}\n`);
      }
      lastDraw = now;
    },
    end() {
      if (drawn) io.stderr.write("\n");
    },
  };
}

/**
 * Runs a started job in the foreground until it stops. Ctrl-C (or SIGTERM) pauses it: rows already
 * sent are written, then the command says how to resume; a second Ctrl-C stops without waiting.
 */
async function followJob(
  enrichments: Enrichments,
  start: (onProgress: (progress: JobProgress) => void) => Promise<JobRun>,
  database: string,
  actor: Actor,
  io: CliIO,
): Promise<void> {
  const reporter = progressReporter(io);
  const run = await start((progress) => reporter.update(progress));
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1) {
      io.stderr.write(
        `\nPausing job ${run.jobId}: writing the rows already sent (Ctrl-C again to stop at once)…\n`,
      );
      enrichments.pause(run.jobId, actor).catch(() => run.pause(`Paused by ${actor.id}`));
    } else {
      run.abortRunning();
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let job: EnrichmentJob;
  try {
    job = await run.done;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    reporter.end();
  }
  const rows = `${job.doneCount + job.errorCount}/${job.rowCount} rows`;
  const summary = `${job.doneCount} written, ${job.errorCount} errors, cost ${usd(job.costNanocents)}`;
  if (job.status === "finished") {
    io.stdout.write(`Job ${job.id} finished: ${summary}.\n`);
    return;
  }
  const resume = `switchboard jobs resume ${database} ${job.id}`;
  const why = job.message ? ` ${job.message}` : "";
  const next: Record<string, string> = {
    paused: `Resume it with: ${resume}`,
    failed: `See the errors with 'switchboard jobs errors ${database} ${job.id}'; resume with: ${resume} [--max-errors N]`,
    budget: `Raise the cap and resume with: ${resume} --max-cost USD`,
    limited: `Resume it once the limit allows more with: ${resume}`,
    cancelled: "",
  };
  throw new SwitchboardError(
    job.status === "limited" ? "LIMIT_EXCEEDED" : "INVALID_INPUT",
    `Job ${job.id} ${job.status} at ${rows} (${summary}).${why}${next[job.status] ? ` ${next[job.status]}` : ""}`,
    { job: job.id, status: job.status },
  );
}

function printJobs(jobs: readonly EnrichmentJob[], database: string, io: CliIO): void {
  if (jobs.length === 0) {
    io.stdout.write("No enrichment jobs in this database.\n");
    return;
  }
  const rows = jobs.map((job) => [
    String(job.id),
    isInterrupted(job) ? "interrupted" : job.status,
    `${job.table}.${job.outputColumn}`,
    `${job.doneCount + job.errorCount}/${job.rowCount}`,
    String(job.errorCount),
    usd(job.costNanocents),
    job.model,
    job.updatedAt.slice(0, 19).replace("T", " "),
  ]);
  const header = ["ID", "STATUS", "OUTPUT", "ROWS", "ERRORS", "COST", "MODEL", "UPDATED"];
  const widths = header.map((title, index) =>
    Math.max(title.length, ...rows.map((row) => (row[index] as string).length)),
  );
  const line = (cells: string[]) =>
    `${cells
      .map((cell, index) => cell.padEnd(widths[index] as number))
      .join("  ")
      .trimEnd()}\n`;
  io.stdout.write(line(header));
  for (const [index, row] of rows.entries()) {
    io.stdout.write(line(row));
    const job = jobs[index] as EnrichmentJob;
    const message = isInterrupted(job)
      ? `Its process stopped; resume it with: switchboard jobs resume ${database} ${job.id}`
      : job.message;
    if (message) io.stdout.write(`    ${message}\n`);
  }
}

/** One input of `extract`: `-` is stdin, an image file becomes an attachment, anything else is text. */
async function readInput(source: string, io: CliIO): Promise<ExtractInput> {
  if (source === "-") return { text: await readAll(io.stdin), source: "stdin" };
  let bytes: Buffer;
  try {
    bytes = readFileSync(source);
  } catch (error) {
    throw new SwitchboardError("NOT_FOUND", `Cannot read ${source}: ${(error as Error).message}.`, {
      path: source,
    });
  }
  const imageType = IMAGE_TYPES[extname(source).toLowerCase()];
  if (imageType) return { attachments: [{ content: new Uint8Array(bytes), type: imageType }], source };
  return { text: bytes.toString("utf8"), source };
}

function tsv(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  return String(value).replace(/[\t\n]/g, " ");
}

export function registerDataCommands(program: Command, io: CliIO): void {
  program
    .command("enrich")
    .description("Run a prompt template over the rows of a table, writing each answer into a column")
    .argument("<db>", "SQLite database file")
    .argument("<table>", "table whose rows to enrich")
    .requiredOption("--prompt <template>", "prompt template; {{ column }} takes the row's value")
    .requiredOption("--output <column>", "column the answers go to (created as TEXT if missing)")
    .option("--system <system>", "system prompt (placeholders allowed)")
    .option("--where <sql>", "SQL condition selecting the rows")
    .option("--purpose <purpose>", "purpose to route by", "enrichments")
    .option("-m, --model <model>", "model id (default: the purpose's model)")
    .option("--concurrency <n>", "rows prompted at the same time", wholeNumber, 8)
    .option("--max-errors <n>", "fail the job after this many row errors (0: never)", wholeNumber, 5)
    .option("--max-cost <usd>", "stop before spending more than this", usdAmount)
    .option("--overwrite", "replace outputs rows already have")
    .option("--actor <id>", "who is acting (default: the OS user)")
    .action(async (database: string, table: string, options, command: Command) => {
      const actor = actorFrom(options, io);
      await withHub(command, io, async (hub) => {
        const enrichments = new Enrichments({ hub, database });
        try {
          const job = await enrichments.create(
            {
              table,
              prompt: options.prompt,
              outputColumn: options.output,
              system: options.system,
              where: options.where,
              purpose: options.purpose,
              model: options.model,
              concurrency: options.concurrency,
              maxErrors: options.maxErrors,
              maxCostUsd: options.maxCost,
              overwrite: options.overwrite === true,
            },
            actor,
          );
          io.stderr.write(
            `Job ${job.id}: ${job.rowCount} rows of ${table} → ${job.outputColumn} with ${job.model}\n`,
          );
          await followJob(
            enrichments,
            (onProgress) => enrichments.start(job.id, actor, { onProgress }),
            database,
            actor,
            io,
          );
        } finally {
          enrichments.close();
        }
      });
    });

  const jobs = program
    .command("jobs")
    .description("List the enrichment jobs of a database; pause, resume or cancel one")
    .argument("<db>", "SQLite database file")
    .option("--json", "print JSON")
    .action(async (database: string, options, command: Command) => {
      await withHub(command, io, async (hub) => {
        const enrichments = new Enrichments({ hub, database });
        try {
          const list = enrichments.jobs();
          if (options.json) io.stdout.write(`${JSON.stringify(list.map(jobJson), null, 2)}\n`);
          else printJobs(list, database, io);
        } finally {
          enrichments.close();
        }
      });
    });

  for (const [name, description] of [
    ["pause", "Pause a job: it takes no more rows and writes those already sent"],
    ["cancel", "Cancel a job for good (rows already written stay)"],
  ] as const) {
    jobs
      .command(name)
      .description(description)
      .argument("<db>", "SQLite database file")
      .argument("<id>", "job id", jobId)
      .option("--actor <id>", "who is acting (default: the OS user)")
      .action(async (database: string, id: number, options, command: Command) => {
        const actor = actorFrom(options, io);
        await withHub(command, io, async (hub) => {
          const enrichments = new Enrichments({ hub, database });
          try {
            const job =
              name === "pause" ? await enrichments.pause(id, actor) : await enrichments.cancel(id, actor);
            io.stdout.write(
              `Job ${job.id} ${job.status} at ${job.doneCount + job.errorCount}/${job.rowCount} rows.\n`,
            );
          } finally {
            enrichments.close();
          }
        });
      });
  }

  jobs
    .command("resume")
    .description("Resume a paused, stopped or interrupted job where it stopped (runs in the foreground)")
    .argument("<db>", "SQLite database file")
    .argument("<id>", "job id", jobId)
    .option("--max-errors <n>", "raise the job's error cap", wholeNumber)
    .option("--max-cost <usd>", "raise the job's cost cap", usdAmount)
    .option("--actor <id>", "who is acting (default: the OS user)")
    .action(async (database: string, id: number, options, command: Command) => {
      const actor = actorFrom(options, io);
      await withHub(command, io, async (hub) => {
        const enrichments = new Enrichments({ hub, database });
        try {
          await followJob(
            enrichments,
            (onProgress) =>
              enrichments.resume(id, actor, {
                onProgress,
                maxErrors: options.maxErrors,
                maxCostUsd: options.maxCost,
              }),
            database,
            actor,
            io,
          );
        } finally {
          enrichments.close();
        }
      });
    });

  jobs
    .command("errors")
    .description("Show a job's row errors with each row's primary key")
    .argument("<db>", "SQLite database file")
    .argument("<id>", "job id", jobId)
    .option("-n, --limit <n>", "most errors to show", wholeNumber, 100)
    .option("--json", "print JSON")
    .action(async (database: string, id: number, options, command: Command) => {
      await withHub(command, io, async (hub) => {
        const enrichments = new Enrichments({ hub, database });
        try {
          const errors = enrichments.errors(id, { limit: options.limit });
          if (options.json) {
            io.stdout.write(`${JSON.stringify(errors, null, 2)}\n`);
            return;
          }
          if (errors.length === 0) io.stdout.write(`Job ${id} has no row errors.\n`);
          for (const error of errors) io.stdout.write(`${JSON.stringify(error.rowKey)}\t${error.error}\n`);
        } finally {
          enrichments.close();
        }
      });
    });

  program
    .command("extract")
    .description("Extract structured rows from text files, images or stdin into a table")
    .argument("<db>", "SQLite database file")
    .argument("<table>", "table to fill (created if missing)")
    .argument("[files...]", "text or image files; - reads stdin (the default)")
    .option(
      "--field <name:type>",
      "a column: NAME:TYPE[:DESCRIPTION], TYPE string|integer|number|boolean (repeatable)",
      collect,
    )
    .option("--instructions <text>", "what to extract, for the model")
    .option("-m, --model <model>", "a model that supports JSON schemas")
    .option("--json", "print the run records as JSON")
    .option("--actor <id>", "who is acting (default: the OS user)")
    .action(async (database: string, table: string, files: string[], options, command: Command) => {
      const actor = actorFrom(options, io);
      const fields = ((options.field as string[] | undefined) ?? []).map(parseField);
      const sources = files.length > 0 ? files : ["-"];
      await withHub(command, io, async (hub) => {
        const extraction = new Extraction({ hub, database });
        try {
          const runs = [];
          for (const source of sources) {
            const input = await readInput(source, io);
            const run = await extraction.run(
              { table, fields, instructions: options.instructions, model: options.model },
              input,
              actor,
            );
            runs.push(run);
            if (!options.json) {
              io.stdout.write(
                `Extracted ${run.itemCount} rows into ${run.table} from ${run.source} with ${run.model} (run ${run.id}).\n`,
              );
            }
            if (run.status !== "finished") {
              if (options.json) io.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
              throw new SwitchboardError(
                "PROVIDER_ERROR",
                `Extraction from ${run.source} failed: ${run.error}`,
                {
                  run: run.id,
                },
              );
            }
          }
          if (options.json) io.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
        } finally {
          extraction.close();
        }
      });
    });

  program
    .command("ask")
    .description("Turn a question about a database into a read-only SQL query (and run it with --run)")
    .argument("<db>", "SQLite database file (opened read-only)")
    .argument("<question>", "the question")
    .option("--table <table>", "focus on this table and the tables related to it by foreign keys")
    .option("--run", "run the query and print the rows")
    .option("-m, --model <model>", "model id (default: the sql-assistant purpose's model)")
    .option("--json", "print JSON")
    .option("--actor <id>", "who is acting (default: the OS user)")
    .action(async (database: string, question: string, options, command: Command) => {
      const actor = actorFrom(options, io);
      await withHub(command, io, async (hub) => {
        const assistant = new SqlAssistant({ hub, database });
        try {
          const answer = await assistant.ask({ question, table: options.table, model: options.model }, actor);
          const result = answer.valid && options.run ? await assistant.run(answer.sql, actor) : undefined;
          if (options.json) {
            io.stdout.write(`${JSON.stringify(result ? { ...answer, result } : answer, null, 2)}\n`);
          } else {
            io.stdout.write(`${answer.sql}\n`);
            if (answer.explanation) io.stdout.write(`\n${answer.explanation}\n`);
            if (result) {
              io.stdout.write(`\n${result.columns.join("\t")}\n`);
              for (const row of result.rows) io.stdout.write(`${row.map(tsv).join("\t")}\n`);
              if (result.truncated) io.stdout.write(`(first ${result.rows.length} rows)\n`);
            }
          }
          if (!answer.valid) {
            throw new SwitchboardError(
              "INVALID_INPUT",
              `No valid read-only query after ${answer.attempts.length} attempts: ${answer.error}`,
            );
          }
        } finally {
          assistant.close();
        }
      });
    });
}
