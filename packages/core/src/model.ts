import { type AttachmentTrust, normalizeAttachments } from "./attachments.ts";
import { type AfterToolCall, type BeforeToolCall, ChainResponse, DEFAULT_CHAIN_LIMIT } from "./chain.ts";
import { MissingKeyError, SwitchboardError } from "./errors.ts";
import { type ExecutionContext, ExecutionScope } from "./execution.ts";
import { newId } from "./ids.ts";
import { isRecord } from "./json.ts";
import { isWellFormedKey, type KeyStore } from "./keys.ts";
import { DEFAULT_TIMEOUT_MS, ModelResponse, type Replay, type TimeoutSetting } from "./response.ts";
import { rememberSecret } from "./scrub.ts";
import type {
  AsyncModelDefinition,
  Attachment,
  AttachmentInput,
  Capabilities,
  FallbackModel,
  HistoryMessage,
  JsonSchema,
  PromptInput,
  Tool,
  ToolCall,
  ToolDefinition,
  ToolResult,
} from "./types.ts";

export interface PromptOptions {
  system?: string;
  attachments?: readonly AttachmentInput[];
  /**
   * Earlier messages, for a caller that keeps no `Conversation` (see `HistoryMessage` for how an
   * OpenAI or Anthropic conversation maps onto it). In a conversation, only its first prompt may
   * carry history; later turns are replayed from the conversation.
   */
  history?: readonly HistoryMessage[];
  /** JSON schema the output must follow (models with schema support). */
  schema?: JsonSchema;
  tools?: readonly Tool[];
  toolResults?: readonly ToolResult[];
  /** Model options, validated against the model's declared options; `max_tokens` is accepted by every model. */
  options?: Record<string, unknown>;
  /** Stream the response (default true when the model can). */
  stream?: boolean;
  /** An explicit API key: wins over every stored key. */
  key?: string;
  signal?: AbortSignal;
  /** Timeout of the whole response in ms; wins over the model's own (default 10 minutes). */
  timeoutMs?: number;
  /**
   * How long each attempt may wait for its first output before failing with a retryable
   * `TIMEOUT` (so a fallback can answer); wins over the model's `firstChunkTimeoutMs`.
   */
  firstChunkTimeoutMs?: number;
  /**
   * The prompt comes from outside (e.g. over HTTP): `{path}` attachments and options that name a
   * file are refused with `INVALID_INPUT` before anything is read, and so are URL attachments
   * unless `allowUrlAttachments` is set too.
   */
  untrusted?: boolean;
  /** Lets an untrusted prompt carry URL attachments (fetched by the provider). */
  allowUrlAttachments?: boolean;
}

export interface ChainOptions extends PromptOptions {
  beforeCall?: BeforeToolCall;
  afterCall?: AfterToolCall;
  /** Most responses a chain may produce (default 10). */
  chainLimit?: number;
}

export interface ConversationOptions {
  tools?: readonly Tool[];
  beforeCall?: BeforeToolCall;
  afterCall?: AfterToolCall;
  chainLimit?: number;
}

const DEFAULT_CAPABILITIES: Capabilities = {
  streaming: true,
  tools: false,
  schema: false,
  attachmentTypes: [],
};

/** The option every model accepts: gateways and budget estimates rely on it. */
const MAX_TOKENS = "max_tokens";

/** setTimeout fires at once for delays beyond a signed 32-bit integer. */
const LONGEST_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * A registered model, ready to prompt. `prompt()`, `chain()` and `conversation()` validate their
 * input at once (an unknown option or a missing capability throws before any request) and
 * return lazy responses.
 */
export class Model {
  readonly definition: AsyncModelDefinition;
  readonly capabilities: Capabilities;
  readonly #keys: KeyStore;
  readonly #env: NodeJS.ProcessEnv;
  readonly #context: ExecutionContext;

  constructor(
    definition: AsyncModelDefinition,
    keys: KeyStore,
    env: NodeJS.ProcessEnv = process.env,
    context: ExecutionContext = {},
  ) {
    this.definition = definition;
    this.capabilities = { ...DEFAULT_CAPABILITIES, ...definition.capabilities };
    this.#keys = keys;
    this.#env = env;
    this.#context = context;
  }

  get id(): string {
    return this.definition.id;
  }
  get aliases(): readonly string[] {
    return this.definition.aliases ?? [];
  }
  get needsKey(): string | undefined {
    return this.definition.needsKey;
  }
  get keyEnvVar(): string | undefined {
    return this.definition.keyEnvVar;
  }
  /** Names of the options the model accepts (`max_tokens` always among them). */
  get optionNames(): string[] {
    const declared = Object.keys(this.definition.options?.shape ?? {});
    return declared.includes(MAX_TOKENS) ? declared : [...declared, MAX_TOKENS];
  }

  /** The same model, with every prompt governed by `context` (used by the hub). */
  withContext(context: ExecutionContext): Model {
    return new Model(this.definition, this.#keys, this.#env, context);
  }

  /**
   * The key a request runs with: explicit key → keys file (by alias) → environment variable.
   * Undefined for models that need none; throws `MissingKeyError` when one is needed and absent,
   * and `INVALID_CONFIG` when it could never be sent (a line break inside it). Every key resolved
   * is remembered by the secret scrubber.
   */
  resolveKey(explicit?: string): string | undefined {
    const alias = this.definition.needsKey;
    if (!alias) return undefined;
    const stored = explicit ? undefined : this.#keys.get(alias);
    const fromEnv = explicit || stored ? undefined : this.#envKey();
    const key = explicit || stored || fromEnv;
    if (!key) throw new MissingKeyError(this.id, alias, this.definition.keyEnvVar);
    const source = explicit ? "explicit" : stored ? "keys file" : "environment";
    rememberSecret(key);
    const trimmed = key.trim();
    if (!isWellFormedKey(trimmed)) throw this.#malformedKey(alias, source);
    return trimmed;
  }

  #malformedKey(alias: string, source: "explicit" | "keys file" | "environment"): SwitchboardError {
    const fix =
      source === "keys file"
        ? `run 'switchboard keys set ${alias}' with the key on one line`
        : source === "environment"
          ? `fix the ${this.definition.keyEnvVar} environment variable`
          : "pass the key (or set the secret that holds it) again, on one line";
    return new SwitchboardError(
      "INVALID_CONFIG",
      `The API key for model ${this.id} is malformed: it contains a line break or another character an HTTP header cannot carry. To fix it, ${fix}.`,
      { model: this.id, keyAlias: alias, keySource: source },
    );
  }

  /** Whether a key can be found without an explicit one (always true for key-less models). */
  hasKey(explicit?: string): boolean {
    const alias = this.definition.needsKey;
    return !alias || Boolean(explicit || this.#keys.get(alias) || this.#envKey());
  }

  #envKey(): string | undefined {
    const name = this.definition.keyEnvVar;
    return name ? this.#env[name] || undefined : undefined;
  }

  prompt(prompt: string, options: PromptOptions = {}): ModelResponse {
    const input = this.buildInput(prompt, options);
    const history = input.history ?? [];
    let response: ModelResponse | undefined;
    const scope = this.observe({
      kind: "prompt",
      input,
      options,
      complete: () => settle(response),
    });
    response = this.createResponse(input, options, { scope, ownsScope: true, replay: () => ({ history }) });
    return response;
  }

  chain(prompt: string, options: ChainOptions = {}): ChainResponse {
    return this.conversation(options).chain(prompt, options);
  }

  conversation(options: ConversationOptions = {}): Conversation {
    return new Conversation(this, options);
  }

  /** @internal Validates one prompt's input against the model's options and capabilities. */
  buildInput(prompt: string, options: PromptOptions): PromptInput {
    if (typeof prompt !== "string") {
      throw new SwitchboardError("INVALID_INPUT", "The prompt must be a string.", { model: this.id });
    }
    const trust: AttachmentTrust = {
      untrusted: options.untrusted === true,
      allowUrls: options.untrusted !== true || options.allowUrlAttachments === true,
    };
    if (trust.untrusted) this.#refuseFileOptions(options.options ?? {});
    validateTimeout("timeoutMs", options.timeoutMs, this.id);
    validateTimeout("firstChunkTimeoutMs", options.firstChunkTimeoutMs, this.id);
    const tools = options.tools ?? [];
    if (tools.length > 0 && !this.capabilities.tools) {
      throw new SwitchboardError("UNSUPPORTED", `Model ${this.id} does not support tools.`, {
        model: this.id,
      });
    }
    if (options.schema && !this.capabilities.schema) {
      throw new SwitchboardError("UNSUPPORTED", `Model ${this.id} does not support schemas.`, {
        model: this.id,
      });
    }
    const history = options.history === undefined ? undefined : this.#validateHistory(options.history, trust);
    const input: PromptInput = {
      prompt,
      attachments: normalizeAttachments(
        options.attachments ?? [],
        this.id,
        this.capabilities.attachmentTypes,
        trust,
      ),
      tools: tools.map(toDefinition),
      toolResults: [...(options.toolResults ?? [])],
      options: this.validateOptions(options.options ?? {}),
    };
    if (options.system !== undefined) input.system = options.system;
    if (options.schema) input.schema = options.schema;
    if (history !== undefined) input.history = history;
    return input;
  }

  /** An option that names a file would let a prompt from outside read the server's files. */
  #refuseFileOptions(options: Record<string, unknown>): void {
    for (const name of this.definition.fileOptions ?? []) {
      if (options[name] === undefined) continue;
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Option "${name}" of model ${this.id} reads a file, which a prompt from outside may not do.`,
        { model: this.id, option: name },
      );
    }
  }

  /** Checks the shape of explicit history (it may come from outside) and validates its attachments. */
  #validateHistory(history: readonly HistoryMessage[], trust: AttachmentTrust): HistoryMessage<Attachment>[] {
    if (!Array.isArray(history)) {
      throw new SwitchboardError("INVALID_INPUT", "history must be an array of messages.", {
        model: this.id,
      });
    }
    return history.map((message: unknown, index): HistoryMessage<Attachment> => {
      const where = `history[${index}]`;
      const invalid = (what: string) =>
        new SwitchboardError("INVALID_INPUT", `${where}: ${what}.`, { model: this.id, message: index });
      if (!isRecord(message)) throw invalid("expected a message object with a role");
      const text = (field: string, optional = false): string | undefined => {
        const value = message[field];
        if (value === undefined && optional) return undefined;
        if (typeof value !== "string") throw invalid(`"${field}" must be a string`);
        return value;
      };
      switch (message.role) {
        case "system":
          return { role: "system", content: text("content") as string };
        case "user": {
          const attachments = message.attachments;
          if (attachments !== undefined && !Array.isArray(attachments))
            throw invalid('"attachments" must be an array');
          const content = text("content") as string;
          if (!attachments || attachments.length === 0) return { role: "user", content };
          return {
            role: "user",
            content,
            attachments: normalizeAttachments(
              attachments,
              this.id,
              this.capabilities.attachmentTypes,
              trust,
              `${where}: `,
            ),
          };
        }
        case "assistant": {
          const content = text("content") as string;
          const calls = message.toolCalls;
          if (calls === undefined) return { role: "assistant", content };
          if (!Array.isArray(calls)) throw invalid('"toolCalls" must be an array');
          const toolCalls = calls.map((call: unknown, callIndex): ToolCall => {
            if (
              !isRecord(call) ||
              typeof call.id !== "string" ||
              call.id === "" ||
              typeof call.name !== "string" ||
              !isRecord(call.arguments)
            ) {
              throw invalid(`toolCalls[${callIndex}] needs an id, a name and an arguments object`);
            }
            return { id: call.id, name: call.name, arguments: call.arguments };
          });
          return toolCalls.length > 0
            ? { role: "assistant", content, toolCalls }
            : { role: "assistant", content };
        }
        case "tool": {
          const toolCallId = text("toolCallId") as string;
          const output = text("output") as string;
          const name = text("name", true);
          const error = text("error", true);
          return {
            role: "tool",
            toolCallId,
            output,
            ...(name === undefined ? {} : { name }),
            ...(error === undefined ? {} : { error }),
          };
        }
        default:
          throw invalid('"role" must be system, user, assistant or tool');
      }
    });
  }

  /** @internal Checks options against the model's schema; the error names the option and the valid ones. */
  validateOptions(options: Record<string, unknown>): Record<string, unknown> {
    const schema = this.definition.options;
    const valid = this.optionNames;
    const unknown = Object.keys(options).find((name) => !valid.includes(name));
    if (unknown !== undefined) {
      // max_tokens goes without saying: every model takes it.
      const declared = valid.filter((name) => name !== MAX_TOKENS);
      const validList =
        declared.length > 0 ? `Valid options: ${declared.join(", ")}.` : `It takes only ${MAX_TOKENS}.`;
      throw new SwitchboardError(
        "INVALID_OPTION",
        `Model ${this.id} has no option "${unknown}". ${validList}`,
        { model: this.id, option: unknown },
      );
    }
    const maxTokens = options[MAX_TOKENS] === undefined ? undefined : this.#maxTokens(options[MAX_TOKENS]);
    const declaresMaxTokens = schema?.shape[MAX_TOKENS] !== undefined;
    const given: Record<string, unknown> = {};
    if (schema) {
      const toParse = declaresMaxTokens ? options : withoutMaxTokens(options);
      const parsed = schema.safeParse(toParse);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const option = issue?.path.join(".") ?? "";
        throw new SwitchboardError(
          "INVALID_OPTION",
          `Option "${option}" of model ${this.id}: ${issue?.message ?? "invalid value"}.`,
          { model: this.id, option },
        );
      }
      // Keep only what the caller gave: defaults belong to the provider, not to the request log.
      const data = parsed.data as Record<string, unknown>;
      for (const name of Object.keys(toParse)) if (data[name] !== undefined) given[name] = data[name];
    }
    if (maxTokens !== undefined && given[MAX_TOKENS] === undefined) given[MAX_TOKENS] = maxTokens;
    return given;
  }

  /** `max_tokens` is a positive whole number for every model; text from a CLI is accepted. */
  #maxTokens(value: unknown): number {
    const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
    if (typeof number !== "number" || !Number.isSafeInteger(number) || number < 1) {
      throw new SwitchboardError(
        "INVALID_OPTION",
        `Option "max_tokens" of model ${this.id} must be a whole number of 1 or more.`,
        { model: this.id, option: MAX_TOKENS },
      );
    }
    return number;
  }

  /** The response timeout: the prompt's, else the model's, else the default. */
  timeoutFor(options: PromptOptions): TimeoutSetting {
    if (options.timeoutMs !== undefined) return { ms: options.timeoutMs, source: "prompt" };
    const own = this.definition.timeoutMs;
    if (own !== undefined) return { ms: own, source: "model" };
    return { ms: DEFAULT_TIMEOUT_MS, source: "default" };
  }

  /** @internal */
  createResponse(
    input: PromptInput,
    options: PromptOptions,
    wiring: {
      scope: ExecutionScope;
      ownsScope: boolean;
      replay: () => Replay;
      chainId?: string;
      conversation?: Conversation;
    },
  ): ModelResponse {
    const context = this.#context;
    const primaryKey = options.key ?? context.key;
    const candidates: FallbackModel[] = [
      primaryKey === undefined ? { model: this } : { model: this, key: primaryKey },
      ...(context.fallbacks ?? []),
    ];
    const conversation = wiring.conversation;
    return new ModelResponse({
      input,
      stream: (options.stream ?? true) && this.capabilities.streaming,
      candidates,
      scope: wiring.scope,
      ownsScope: wiring.ownsScope,
      replay: wiring.replay,
      ...(conversation ? { onComplete: (response: ModelResponse) => conversation.record(response) } : {}),
      ...(wiring.chainId ? { chainId: wiring.chainId } : {}),
      ...(conversation ? { conversationId: conversation.id } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      timeout: this.timeoutFor(options),
      ...(options.firstChunkTimeoutMs === undefined
        ? {}
        : { firstChunkTimeoutMs: options.firstChunkTimeoutMs }),
    });
  }

  /** @internal Creates the observer scope of one top-level prompt or chain. */
  observe(start: {
    kind: "prompt" | "chain";
    input: PromptInput;
    options: PromptOptions;
    complete: () => Promise<void>;
    conversationId?: string;
    chainId?: string;
  }): ExecutionScope {
    const observer = this.#context.observe?.({
      kind: start.kind,
      modelId: this.id,
      input: start.input,
      executionId: start.chainId ?? newId("exec"),
      conversationId: start.conversationId,
      timeoutMs: this.timeoutFor(start.options).ms,
      complete: start.complete,
    });
    return new ExecutionScope(observer);
  }
}

function validateTimeout(name: string, value: number | undefined, modelId: string): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > LONGEST_TIMEOUT_MS) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `${name} must be a number of milliseconds between 1 and ${LONGEST_TIMEOUT_MS}.`,
      { model: modelId, option: name },
    );
  }
}

function withoutMaxTokens(options: Record<string, unknown>): Record<string, unknown> {
  if (options[MAX_TOKENS] === undefined) return options;
  const { [MAX_TOKENS]: _maxTokens, ...rest } = options;
  return rest;
}

/** Runs a response or chain to its end, leaving any error to whoever consumes it. */
async function settle(execution: { done(): Promise<unknown> } | undefined): Promise<void> {
  await execution?.done().catch(() => undefined);
}

function toDefinition(tool: Tool): ToolDefinition {
  const definition: ToolDefinition = { name: tool.name };
  if (tool.description !== undefined) definition.description = tool.description;
  if (tool.inputSchema !== undefined) definition.inputSchema = tool.inputSchema;
  return definition;
}

/** The messages one completed turn adds to the history: its tool results and prompt, then the answer. */
function turnMessages(response: ModelResponse): HistoryMessage<Attachment>[] {
  const { input } = response;
  const messages: HistoryMessage<Attachment>[] = input.toolResults.map((result) => ({
    role: "tool",
    toolCallId: result.toolCallId,
    name: result.name,
    output: result.output,
    ...(result.error === undefined ? {} : { error: result.error }),
  }));
  // A turn that only carries tool results has no user message (its prompt is empty).
  if (input.prompt || input.attachments.length > 0 || input.toolResults.length === 0) {
    messages.push(
      input.attachments.length > 0
        ? { role: "user", content: input.prompt, attachments: input.attachments }
        : { role: "user", content: input.prompt },
    );
  }
  const toolCalls = response.toolCallsSoFar;
  messages.push(
    toolCalls.length > 0
      ? { role: "assistant", content: response.textSoFar, toolCalls: [...toolCalls] }
      : { role: "assistant", content: response.textSoFar },
  );
  return messages;
}

/**
 * A sequence of prompts whose earlier turns are sent with each new one. A response joins the
 * conversation's history when it completes. The first prompt may carry explicit history, which
 * the conversation then starts from.
 */
export class Conversation {
  readonly id: string = newId("conv");
  readonly #model: Model;
  readonly #options: ConversationOptions;
  readonly #responses: ModelResponse[] = [];
  #seed: readonly HistoryMessage<Attachment>[] = [];
  #started = false;

  constructor(model: Model, options: ConversationOptions) {
    this.#model = model;
    this.#options = options;
  }

  get modelId(): string {
    return this.#model.id;
  }

  /** Completed responses, in completion order. */
  get responses(): readonly ModelResponse[] {
    return this.#responses;
  }

  /** @internal What the next request replays: the explicit history, then every completed turn. */
  replay(): Replay {
    const history = [...this.#seed];
    let system: string | undefined;
    for (const response of this.#responses) {
      history.push(...turnMessages(response));
      // A conversation's system prompt is usually given on its first turn only.
      if (response.input.system) system = response.input.system;
    }
    return system === undefined ? { history } : { history, system };
  }

  /** @internal */
  record(response: ModelResponse): void {
    this.#responses.push(response);
  }

  /** Validates a prompt of this conversation; explicit history is only taken on the first one. */
  #input(prompt: string, options: PromptOptions): PromptInput {
    if (options.history !== undefined && this.#started) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        "Only a conversation's first prompt may carry history; later turns are replayed from the conversation.",
        { model: this.#model.id },
      );
    }
    const input = this.#model.buildInput(prompt, options);
    this.#started = true;
    if (input.history) this.#seed = input.history;
    return input;
  }

  prompt(prompt: string, options: PromptOptions = {}): ModelResponse {
    const model = this.#model;
    const merged = { ...options, tools: options.tools ?? this.#options.tools ?? [] };
    const input = this.#input(prompt, merged);
    let response: ModelResponse | undefined;
    const scope = model.observe({
      kind: "prompt",
      input,
      options: merged,
      conversationId: this.id,
      complete: () => settle(response),
    });
    response = model.createResponse(input, merged, {
      scope,
      ownsScope: true,
      conversation: this,
      replay: () => this.replay(),
    });
    return response;
  }

  chain(prompt: string, options: ChainOptions = {}): ChainResponse {
    const model = this.#model;
    const tools = options.tools ?? this.#options.tools ?? [];
    const merged = { ...options, tools };
    const input = this.#input(prompt, merged);
    const chainId = newId("chain");
    let chain: ChainResponse | undefined;
    const scope = model.observe({
      kind: "chain",
      input,
      options: merged,
      conversationId: this.id,
      chainId,
      complete: () => settle(chain),
    });
    const beforeCall = options.beforeCall ?? this.#options.beforeCall;
    const afterCall = options.afterCall ?? this.#options.afterCall;
    chain = new ChainResponse(
      {
        firstInput: input,
        tools,
        ...(beforeCall ? { beforeCall } : {}),
        ...(afterCall ? { afterCall } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        chainLimit: options.chainLimit ?? this.#options.chainLimit ?? DEFAULT_CHAIN_LIMIT,
        scope,
        createResponse: (stepInput, id) =>
          model.createResponse(stepInput, merged, {
            scope,
            ownsScope: false,
            chainId: id,
            conversation: this,
            replay: () => this.replay(),
          }),
      },
      chainId,
    );
    return chain;
  }
}
