import { CancelToolCall, describeError, SwitchboardError } from "./errors.ts";
import { newId } from "./ids.ts";
import { type ModelResponse, type ResponseScope, sumUsage } from "./response.ts";
import type { PromptInput, Tool, ToolCall, ToolResult, Usage } from "./types.ts";

/** Runs before each tool call; throw `CancelToolCall` to skip it. */
export type BeforeToolCall = (tool: Tool, toolCall: ToolCall) => unknown;
/** Runs after each tool call with its result. */
export type AfterToolCall = (tool: Tool, toolCall: ToolCall, result: ToolResult) => unknown;

export const DEFAULT_CHAIN_LIMIT = 10;

function serializeToolOutput(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value ?? null) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Runs the tool calls one response asked for. All calls start together (async tools run
 * concurrently); results come back in call order.
 */
export async function runToolCalls(
  calls: readonly ToolCall[],
  tools: readonly Tool[],
  hooks: { beforeCall?: BeforeToolCall; afterCall?: AfterToolCall; signal?: AbortSignal },
): Promise<ToolResult[]> {
  const signal = hooks.signal ?? new AbortController().signal;
  return Promise.all(
    calls.map(async (call): Promise<ToolResult> => {
      const base = { toolCallId: call.id, name: call.name };
      const tool = tools.find((candidate) => candidate.name === call.name);
      if (!tool)
        return { ...base, output: `Error: tool "${call.name}" does not exist`, error: "unknown tool" };
      if (!tool.execute) {
        return {
          ...base,
          output: `Error: tool "${call.name}" has no implementation`,
          error: "no implementation",
        };
      }
      if (hooks.beforeCall) {
        try {
          await hooks.beforeCall(tool, call);
        } catch (error) {
          if (CancelToolCall.isInstance(error)) return { ...base, output: `Cancelled: ${error.message}` };
          throw error;
        }
      }
      let result: ToolResult;
      try {
        const value = await tool.execute(call.arguments, { toolCall: call, signal });
        result = { ...base, output: serializeToolOutput(value) };
      } catch (error) {
        result = { ...base, output: `Error: ${describeError(error)}`, error: describeError(error) };
      }
      await hooks.afterCall?.(tool, call, result);
      return result;
    }),
  );
}

export interface ChainInit {
  firstInput: PromptInput;
  tools: readonly Tool[];
  beforeCall?: BeforeToolCall;
  afterCall?: AfterToolCall;
  chainLimit: number;
  scope: ResponseScope;
  signal?: AbortSignal;
  /** Creates the response for one step of the chain. */
  createResponse: (input: PromptInput, chainId: string) => ModelResponse;
}

/**
 * A tool-call chain: the model asks for tool calls, the tools run, the next response carries
 * their results, until a response asks for none. Lazy like a response; observed as one execution.
 */
export class ChainResponse implements AsyncIterable<string> {
  readonly id: string;
  readonly #init: ChainInit;
  readonly #responses: ModelResponse[] = [];
  #finished = false;
  #error: unknown;
  #run: Promise<void> | undefined;
  #wakers: (() => void)[] = [];

  constructor(init: ChainInit, id: string = newId("chain")) {
    this.#init = init;
    this.id = id;
  }

  /** Yields each response of the chain as soon as it starts, so its chunks can be streamed. */
  async *responses(): AsyncGenerator<ModelResponse> {
    void this.#start();
    let index = 0;
    for (;;) {
      while (index < this.#responses.length) yield this.#responses[index++] as ModelResponse;
      if (this.#finished) {
        if (this.#error !== undefined) throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => this.#wakers.push(resolve));
    }
  }

  /** Text chunks of every response in turn. */
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for await (const response of this.responses()) yield* response;
  }

  /** Runs the whole chain; resolves to itself or rejects with the chain's error. */
  async done(): Promise<this> {
    await this.#start();
    if (this.#error !== undefined) throw this.#error;
    return this;
  }

  /** Every response's text, concatenated without a separator. */
  async text(): Promise<string> {
    await this.done();
    return this.#responses.map((response) => response.textSoFar).join("");
  }

  async usage(): Promise<Usage> {
    await this.done();
    return sumUsage(this.#responses.map((response) => response.usageSoFar));
  }

  /** Responses started so far. */
  get responsesSoFar(): readonly ModelResponse[] {
    return this.#responses;
  }

  #start(): Promise<void> {
    this.#run ??= this.#drive();
    return this.#run;
  }

  #publish(response: ModelResponse): void {
    this.#responses.push(response);
    this.#wake();
  }

  #wake(): void {
    const wakers = this.#wakers;
    this.#wakers = [];
    for (const wake of wakers) wake();
  }

  async #drive(): Promise<void> {
    const init = this.#init;
    let input = init.firstInput;
    let error: unknown;
    try {
      for (;;) {
        const response = init.createResponse(input, this.id);
        this.#publish(response);
        await response.done();
        const calls = response.toolCallsSoFar;
        if (calls.length === 0) break;
        if (this.#responses.length >= init.chainLimit) {
          throw new SwitchboardError(
            "CHAIN_LIMIT",
            `Chain limit of ${init.chainLimit} responses reached while the model still asked for tools; raise chainLimit if more steps are expected.`,
            { chainLimit: init.chainLimit },
          );
        }
        const hooks = {
          ...(init.beforeCall ? { beforeCall: init.beforeCall } : {}),
          ...(init.afterCall ? { afterCall: init.afterCall } : {}),
          ...(init.signal ? { signal: init.signal } : {}),
        };
        const toolResults = await runToolCalls(calls, init.tools, hooks);
        // Later steps carry only the tool results: the prompt, its attachments and any explicit
        // history are replayed from the conversation.
        const { history: _history, ...firstInput } = init.firstInput;
        input = { ...firstInput, prompt: "", attachments: [], toolResults };
      }
    } catch (caught) {
      error = caught;
    }
    await init.scope.after(error);
    this.#error = error;
    this.#finished = true;
    this.#wake();
  }
}
