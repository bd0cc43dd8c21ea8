import { normalizeAttachments } from "./attachments.ts";
import { type AfterToolCall, type BeforeToolCall, ChainResponse, DEFAULT_CHAIN_LIMIT } from "./chain.ts";
import { MissingKeyError, SwitchboardError } from "./errors.ts";
import { type ExecutionContext, ExecutionScope, type FallbackModel } from "./execution.ts";
import { newId } from "./ids.ts";
import type { KeyStore } from "./keys.ts";
import { ModelResponse } from "./response.ts";
import type {
  AsyncModelDefinition,
  AttachmentInput,
  Capabilities,
  Exchange,
  JsonSchema,
  PromptInput,
  Tool,
  ToolDefinition,
  ToolResult,
} from "./types.ts";

export interface PromptOptions {
  system?: string;
  attachments?: readonly AttachmentInput[];
  /** JSON schema the output must follow (models with schema support). */
  schema?: JsonSchema;
  tools?: readonly Tool[];
  toolResults?: readonly ToolResult[];
  /** Model options, validated against the model's declared options. */
  options?: Record<string, unknown>;
  /** Stream the response (default true when the model can). */
  stream?: boolean;
  /** An explicit API key: wins over every stored key. */
  key?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
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

const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

const DEFAULT_CAPABILITIES: Capabilities = {
  streaming: true,
  tools: false,
  schema: false,
  attachmentTypes: [],
};

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
  /** Names of the options the model accepts. */
  get optionNames(): string[] {
    return Object.keys(this.definition.options?.shape ?? {});
  }

  /** The same model, with every prompt governed by `context` (used by the hub). */
  withContext(context: ExecutionContext): Model {
    return new Model(this.definition, this.#keys, this.#env, context);
  }

  /**
   * The key a request runs with: explicit key → keys file (by alias) → environment variable.
   * Undefined for models that need none; throws `MissingKeyError` when one is needed and absent.
   */
  resolveKey(explicit?: string): string | undefined {
    const alias = this.definition.needsKey;
    if (!alias) return undefined;
    const key = explicit || this.#keys.get(alias) || this.#envKey();
    if (!key) throw new MissingKeyError(this.id, alias, this.definition.keyEnvVar);
    return key;
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
    let response: ModelResponse | undefined;
    const { scope } = this.#observe("prompt", input, undefined, undefined, () => settle(response));
    response = this.createResponse(input, options, { scope, ownsScope: true });
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
    const input: PromptInput = {
      prompt,
      attachments: normalizeAttachments(
        options.attachments ?? [],
        this.id,
        this.capabilities.attachmentTypes,
      ),
      tools: tools.map(toDefinition),
      toolResults: [...(options.toolResults ?? [])],
      options: this.validateOptions(options.options ?? {}),
    };
    if (options.system !== undefined) input.system = options.system;
    if (options.schema) input.schema = options.schema;
    return input;
  }

  /** @internal Checks options against the model's schema; the error names the option and the valid ones. */
  validateOptions(options: Record<string, unknown>): Record<string, unknown> {
    const schema = this.definition.options;
    const valid = this.optionNames;
    const validList = valid.length > 0 ? `Valid options: ${valid.join(", ")}.` : "It takes no options.";
    if (!schema) {
      const [first] = Object.keys(options);
      if (first === undefined) return {};
      throw new SwitchboardError(
        "INVALID_OPTION",
        `Model ${this.id} has no option "${first}". ${validList}`,
        {
          model: this.id,
          option: first,
        },
      );
    }
    const unknown = Object.keys(options).find((name) => !valid.includes(name));
    if (unknown !== undefined) {
      throw new SwitchboardError(
        "INVALID_OPTION",
        `Model ${this.id} has no option "${unknown}". ${validList}`,
        {
          model: this.id,
          option: unknown,
        },
      );
    }
    const parsed = schema.safeParse(options);
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
    const given: Record<string, unknown> = {};
    const data = parsed.data as Record<string, unknown>;
    for (const name of Object.keys(options)) if (data[name] !== undefined) given[name] = data[name];
    return given;
  }

  /** @internal */
  createResponse(
    input: PromptInput,
    options: PromptOptions,
    wiring: {
      scope: ExecutionScope;
      ownsScope: boolean;
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
      history: conversation ? () => conversation.exchanges() : () => [],
      ...(conversation ? { onComplete: (response: ModelResponse) => conversation.record(response) } : {}),
      ...(wiring.chainId ? { chainId: wiring.chainId } : {}),
      ...(conversation ? { conversationId: conversation.id } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      timeoutMs: options.timeoutMs ?? this.definition.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
  }

  /** Creates the observer scope of one top-level prompt or chain. */
  #observe(
    kind: "prompt" | "chain",
    input: PromptInput,
    conversationId: string | undefined,
    chainId: string | undefined,
    complete: () => Promise<void>,
  ): { scope: ExecutionScope; id: string } {
    const id = chainId ?? newId("exec");
    const observe = this.#context.observe;
    const observer = observe?.({ kind, modelId: this.id, input, executionId: id, conversationId, complete });
    return { scope: new ExecutionScope(observer), id };
  }

  /** @internal */
  observe(
    kind: "prompt" | "chain",
    input: PromptInput,
    conversationId: string,
    complete: () => Promise<void>,
    chainId?: string,
  ) {
    return this.#observe(kind, input, conversationId, chainId, complete);
  }
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

/**
 * A sequence of prompts whose earlier turns are sent with each new one. A response joins the
 * conversation's history when it completes.
 */
export class Conversation {
  readonly id: string = newId("conv");
  readonly #model: Model;
  readonly #options: ConversationOptions;
  readonly #responses: ModelResponse[] = [];

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

  /** @internal */
  exchanges(): Exchange[] {
    return this.#responses.map((response) => ({
      input: response.input,
      text: response.textSoFar,
      toolCalls: [...response.toolCallsSoFar],
    }));
  }

  /** @internal */
  record(response: ModelResponse): void {
    this.#responses.push(response);
  }

  prompt(prompt: string, options: PromptOptions = {}): ModelResponse {
    const model = this.#model;
    const merged = { ...options, tools: options.tools ?? this.#options.tools ?? [] };
    const input = model.buildInput(prompt, merged);
    let response: ModelResponse | undefined;
    const { scope } = model.observe("prompt", input, this.id, () => settle(response));
    response = model.createResponse(input, merged, { scope, ownsScope: true, conversation: this });
    return response;
  }

  chain(prompt: string, options: ChainOptions = {}): ChainResponse {
    const model = this.#model;
    const tools = options.tools ?? this.#options.tools ?? [];
    const merged = { ...options, tools };
    const input = model.buildInput(prompt, merged);
    const chainId = newId("chain");
    let chain: ChainResponse | undefined;
    const { scope } = model.observe("chain", input, this.id, () => settle(chain), chainId);
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
          }),
      },
      chainId,
    );
    return chain;
  }
}
