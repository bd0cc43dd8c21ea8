/**
 * The `markov` model's blocking generator. It runs inside a worker thread (see `workers/pool.ts`),
 * so it may spend as long as it likes training and generating without stalling the event loop.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { StreamPart, SyncModelRequest } from "../types.ts";

/** Options of the `markov` model. Numbers are coerced so `-o length 500` from the CLI works. */
export const markovOptionsSchema = z.object({
  length: z.coerce.number().int().min(1).max(1_000_000).default(100).describe("Number of words to generate"),
  order: z.coerce
    .number()
    .int()
    .min(1)
    .max(5)
    .default(1)
    .describe("Words of context per step; higher follows the training text more closely"),
  seed: z.coerce.number().int().optional().describe("Seed for reproducible output"),
  file: z.string().min(1).optional().describe("Path of a text file to train on instead of the prompt"),
});

export type MarkovOptions = z.output<typeof markovOptionsSchema>;

/** Small, fast, seedable PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function splitWords(text: string): string[] {
  return text.split(/\s+/).filter((word) => word.length > 0);
}

const SENTENCE_END = /[.!?]["')\]]*$/;

/**
 * A word-level Markov chain of order N. States (runs of N words) are interned to integers and their
 * successors kept in flat typed arrays, so generating a word allocates nothing: a long generation
 * creates no garbage whose collection would compete for CPU with the rest of the process.
 */
export class MarkovChain {
  readonly order: number;
  readonly vocabulary: readonly string[];
  /** Each word preceded by a space: the chunk for every word but the first. */
  readonly #spacedVocabulary: readonly string[];
  /** The training text as word ids. */
  readonly #sequence: Int32Array;
  /** State id of the N-word window ending at each position (from position N-1 on). */
  readonly #stateAt: Int32Array;
  readonly #lastWordOfState: Int32Array;
  /** Successors of state s are #successors[#successorOffsets[s] … #successorOffsets[s + 1]]; repeats weight them. */
  readonly #successorOffsets: Int32Array;
  readonly #successors: Int32Array;
  /** Where a sentence (or the text) begins and a successor exists: where generation starts and restarts. */
  readonly #startPositions: Int32Array;

  constructor(tokens: readonly string[], order: number) {
    if (tokens.length < order + 1)
      throw new Error(`A chain of order ${order} needs at least ${order + 1} words`);
    this.order = order;
    const ids = new Map<string, number>();
    const vocabulary: string[] = [];
    const sequence = new Int32Array(tokens.length);
    tokens.forEach((token, position) => {
      let id = ids.get(token);
      if (id === undefined) {
        id = vocabulary.length;
        ids.set(token, id);
        vocabulary.push(token);
      }
      sequence[position] = id;
    });
    this.vocabulary = vocabulary;
    this.#spacedVocabulary = vocabulary.map((word) => ` ${word}`);
    this.#sequence = sequence;

    // A window of L words is interned from (its first L-1 words' state, its last word); one word is its own state.
    let stateAt = sequence;
    let stateCount = vocabulary.length;
    const numericKeys = tokens.length * vocabulary.length < Number.MAX_SAFE_INTEGER;
    for (let length = 2; length <= order; length++) {
      const interned = new Map<number | string, number>();
      const next = new Int32Array(tokens.length);
      for (let position = length - 1; position < tokens.length; position++) {
        const prefix = stateAt[position - 1]!;
        const word = sequence[position]!;
        const key = numericKeys ? prefix * vocabulary.length + word : `${prefix}:${word}`;
        let id = interned.get(key);
        if (id === undefined) {
          id = interned.size;
          interned.set(key, id);
        }
        next[position] = id;
      }
      stateAt = next;
      stateCount = interned.size;
    }
    this.#stateAt = stateAt;

    const lastWordOfState = new Int32Array(stateCount);
    const successorOffsets = new Int32Array(stateCount + 1);
    for (let position = order - 1; position < tokens.length; position++) {
      const state = stateAt[position]!;
      lastWordOfState[state] = sequence[position]!;
      if (position + 1 < tokens.length) successorOffsets[state + 1]!++;
    }
    for (let state = 0; state < stateCount; state++) {
      successorOffsets[state + 1]! += successorOffsets[state]!;
    }
    const successors = new Int32Array(tokens.length - order);
    const nextFree = successorOffsets.slice(0, stateCount);
    for (let position = order - 1; position + 1 < tokens.length; position++) {
      successors[nextFree[stateAt[position]!]!++] = stateAt[position + 1]!;
    }
    this.#lastWordOfState = lastWordOfState;
    this.#successorOffsets = successorOffsets;
    this.#successors = successors;

    const startPositions: number[] = [];
    for (let position = 0; position + order < tokens.length; position++) {
      const previous = tokens[position - 1];
      if (previous === undefined || SENTENCE_END.test(previous)) startPositions.push(position);
    }
    this.#startPositions = Int32Array.from(startPositions);
  }

  /** The words seen after `context` (N words) in the training text, repeats included. */
  followers(context: readonly string[]): string[] {
    if (context.length !== this.order) throw new Error(`The context must be ${this.order} words`);
    const ids = context.map((word) => this.vocabulary.indexOf(word));
    for (let end = this.order - 1; end < this.#sequence.length; end++) {
      const start = end - this.order + 1;
      if (ids.every((id, index) => this.#sequence[start + index] === id)) {
        const state = this.#stateAt[end]!;
        const next = this.#successors.subarray(
          this.#successorOffsets[state],
          this.#successorOffsets[state + 1],
        );
        return Array.from(next, (successor) => this.vocabulary[this.#lastWordOfState[successor]!]!);
      }
    }
    return [];
  }

  /** The N-word windows generation may start (and restart) from. */
  sentenceStarts(): string[][] {
    return Array.from(this.#startPositions, (position) =>
      Array.from(this.#sequence.subarray(position, position + this.order), (id) => this.vocabulary[id]!),
    );
  }

  /** Yields `length` words, each with its separating space; a dead end restarts at a random sentence start. */
  *words(length: number, random: () => number): Generator<string, void, undefined> {
    let produced = 0;
    const chunk = (id: number): string =>
      produced++ === 0 ? this.vocabulary[id]! : this.#spacedVocabulary[id]!;
    let state = -1;
    while (produced < length) {
      const begin = state < 0 ? 0 : this.#successorOffsets[state]!;
      const end = state < 0 ? 0 : this.#successorOffsets[state + 1]!;
      if (begin === end) {
        const start = this.#startPositions[Math.floor(random() * this.#startPositions.length)]!;
        for (let position = start; position < start + this.order && produced < length; position++) {
          yield chunk(this.#sequence[position]!);
        }
        state = this.#stateAt[start + this.order - 1]!;
        continue;
      }
      state = this.#successors[begin + Math.floor(random() * (end - begin))]!;
      yield chunk(this.#lastWordOfState[state]!);
    }
  }
}

function loadTrainingText(
  request: SyncModelRequest,
  options: MarkovOptions,
): { text: string; source: string } {
  if (options.file === undefined) return { text: request.prompt, source: "the prompt" };
  try {
    return { text: readFileSync(options.file, "utf8"), source: `the training file ${options.file}` };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot read the markov training file ${options.file}: ${reason}`);
  }
}

/**
 * The `markov` model: trains on the `file` option's text (else the prompt) and yields `length` words
 * (at most `max_tokens`, the option every model takes), one chunk per word with its separating
 * space, then a usage part and the finish reason.
 */
export function* generate(request: SyncModelRequest): Generator<string | StreamPart, void, undefined> {
  const options = markovOptionsSchema.parse(request.options);
  const maxTokens = request.options.max_tokens;
  const length = typeof maxTokens === "number" ? Math.min(options.length, maxTokens) : options.length;
  const { text, source } = loadTrainingText(request, options);
  const tokens = splitWords(text);
  if (tokens.length < options.order + 1) {
    throw new Error(
      `The markov model with order ${options.order} needs at least ${options.order + 1} words of training text, ` +
        `but ${source} has ${tokens.length}: give a longer prompt, a training file (-o file PATH) or a lower order.`,
    );
  }
  const chain = new MarkovChain(tokens, options.order);
  yield* chain.words(length, mulberry32(options.seed ?? Math.floor(Math.random() * 2 ** 32)));
  yield { type: "usage", usage: { input: splitWords(request.prompt).length, output: length } };
  yield { type: "finish", reason: length < options.length ? "length" : "stop" };
}
