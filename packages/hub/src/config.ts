import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { SwitchboardError } from "@switchboard/core";
import { z } from "zod";
import { PERMISSION_ACTIONS } from "./permissions.ts";

/** A model id, or a model id with the name of the secret holding its key. */
const modelRefSchema = z.union([
  z.string().min(1, "expected a model id"),
  z.strictObject({ model: z.string().min(1, "expected a model id"), key: z.string().min(1).optional() }),
]);
export type ModelRef = z.infer<typeof modelRefSchema>;

export const purposeSchema = z.strictObject({
  description: z.string().optional(),
  model: modelRefSchema.optional(),
  models: z.array(modelRefSchema).optional(),
  blocked_models: z.array(z.string()).optional(),
  fallbacks: z.array(modelRefSchema).optional(),
});
export type PurposeConfig = z.infer<typeof purposeSchema>;

const providerModelSchema = z.union([
  z.string().min(1),
  z.strictObject({
    id: z.string().min(1),
    name: z.string().optional(),
    aliases: z.array(z.string()).optional(),
    tools: z.boolean().optional(),
    schema: z.boolean().optional(),
    streaming: z.boolean().optional(),
    attachment_types: z.array(z.string()).optional(),
  }),
]);

const providerSchema = z.strictObject({
  type: z.enum(["openai", "anthropic"]),
  base_url: z.url("expected a URL such as http://127.0.0.1:11434/v1"),
  key: z.string().min(1).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  /** Retries of a 429/5xx/connection failure before giving up (or falling back). */
  max_retries: z.number().int().min(0).max(10).optional(),
  timeout_ms: z.number().int().positive().optional(),
  /** How long an attempt may wait for its first chunk; then it fails over like a 5xx (a hung model). */
  first_chunk_timeout_ms: z.number().int().positive().optional(),
  models: z.array(providerModelSchema).min(1, "list at least one model"),
});
export type ProviderConfig = z.infer<typeof providerSchema>;

const usdAmount = z.number().nonnegative("expected an amount in USD (0 or more)");

const priceSchema = z.strictObject({
  input: usdAmount,
  output: usdAmount,
  cached_input: usdAmount.optional(),
});

const limitSchema = z.strictObject({
  scope: z.enum(["actor", "instance"]),
  window: z.enum([
    "rolling-24h",
    "rolling-7d",
    "rolling-30d",
    "calendar-day",
    "calendar-week",
    "calendar-month",
  ]),
  amount_usd: usdAmount,
  purpose: z.string().optional(),
  model: z.string().optional(),
});
export type LimitConfig = z.infer<typeof limitSchema>;

export const configSchema = z.strictObject({
  /** Plugin modules (paths relative to the config file, or package names), loaded in this order. */
  plugins: z.array(z.string().min(1, "expected a module path or package name")).default([]),
  default_model: modelRefSchema.optional(),
  models: z.array(z.string()).optional(),
  blocked_models: z.array(z.string()).optional(),
  require_keys: z.boolean().default(true),
  purposes: z.record(z.string(), purposeSchema).default({}),
  providers: z.record(z.string(), providerSchema).default({}),
  storage: z.string().optional(),
  /** Admin UI and data tools: action → the actor ids allowed to do it (`root` may do everything). */
  permissions: z
    .partialRecord(z.enum(PERMISSION_ACTIONS), z.array(z.string().min(1, "expected an actor id")))
    .default({}),
  usage: z
    .strictObject({
      enabled: z.boolean().default(true),
      log_prompts: z.boolean().default(false),
      retention_days: z.number().positive().optional(),
    })
    .optional(),
  accounting: z
    .strictObject({
      enabled: z.boolean().optional(),
      auto_reservation_usd: usdAmount.optional(),
      group_reservation_usd: usdAmount.optional(),
      reservations: z
        .strictObject({
          purposes: z.record(z.string(), usdAmount).optional(),
          models: z.record(z.string(), usdAmount).optional(),
        })
        .optional(),
      estimate: z.boolean().optional(),
      unpriced: z.enum(["free", "refuse"]).optional(),
      hold_ttl_seconds: z.number().int().positive().optional(),
      pricing: z.record(z.string(), priceSchema).optional(),
    })
    .optional(),
  limits: z.record(z.string(), limitSchema).optional(),
  allowance: z.strictObject({ enabled: z.boolean().default(true) }).optional(),
  /** `switchboard serve`: the HTTP server and gateway. */
  server: z
    .strictObject({
      max_body_bytes: z
        .number()
        .int()
        .positive()
        .default(10 * 1024 * 1024),
      allow_url_attachments: z.boolean().default(false),
      drop_unsupported_options: z.boolean().default(false),
    })
    .prefault({}),
});

export type HubConfig = z.output<typeof configSchema>;
export type HubConfigInput = z.input<typeof configSchema>;

/** `purposes.enrichments.models[1]` from zod's path segments. */
function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else text += text ? `.${String(segment)}` : String(segment);
  }
  return text || "(top level)";
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    const where = issue.path.length > 0 ? `${formatPath(issue.path)}.` : "";
    return issue.keys.map((key) => `${where}${key}: unknown setting`).join("; ");
  }
  if (issue.code === "invalid_union") {
    return `${formatPath(issue.path)}: expected a model id or {model: id, key: SECRET_NAME}`;
  }
  return `${formatPath(issue.path)}: ${issue.message}`;
}

/** Validates a parsed configuration object; errors name each offending path. */
export function parseConfig(raw: unknown, source = "configuration"): HubConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.map(describeIssue);
    throw new SwitchboardError("INVALID_CONFIG", `Invalid ${source}: ${problems.join("; ")}`, {
      source,
      problems,
    });
  }
  return result.data;
}

/**
 * The YAML parser, loaded the first time a configuration file is read (synchronously, as reading
 * is): commands run without a file do not pay for it at start-up.
 */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)("yaml") as typeof import("yaml");
  return yaml.parse(text);
}

export function loadConfigFile(path: string): HubConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new SwitchboardError(
      "INVALID_CONFIG",
      `Cannot read the configuration file ${path}; check the path.`,
      { path },
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new SwitchboardError("INVALID_CONFIG", `${path} is not valid YAML: ${(error as Error).message}`, {
      path,
    });
  }
  return parseConfig(raw, path);
}

/** `--config FILE`, else `$SWITCHBOARD_CONFIG`, else `./switchboard.yaml` when it exists. */
export function findConfigPath(options: {
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}): string | undefined {
  if (options.configPath) return resolve(options.cwd ?? process.cwd(), options.configPath);
  const fromEnv = (options.env ?? process.env).SWITCHBOARD_CONFIG;
  if (fromEnv) return resolve(options.cwd ?? process.cwd(), fromEnv);
  const local = resolve(options.cwd ?? process.cwd(), "switchboard.yaml");
  return existsSync(local) ? local : undefined;
}

export function refModel(ref: ModelRef): string {
  return typeof ref === "string" ? ref : ref.model;
}

export function refKey(ref: ModelRef | undefined): string | undefined {
  return ref && typeof ref !== "string" ? ref.key : undefined;
}
