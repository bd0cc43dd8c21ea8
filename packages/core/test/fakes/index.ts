/**
 * `@switchboard/core/testing`: fake OpenAI and Anthropic servers that speak the real wire formats,
 * for the tests and benchmarks of every package (and of plugins built on Switchboard).
 */
export { anthropicWire, startFakeAnthropic } from "./anthropic-server.ts";
export type {
  FakeAnswer,
  FakeHttpError,
  FakeReply,
  FakeServer,
  FakeServerOptions,
  FakeToolCall,
  FakeUsage,
  RecordedRequest,
} from "./fake-server.ts";
export { openaiWire, startFakeOpenAI } from "./openai-server.ts";
