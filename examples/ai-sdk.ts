/**
 * Switchboard inside the Vercel AI SDK: `generateText` and `streamText` ask for a model by
 * purpose, and the hub decides which model answers, for whom, within which budget, and logs it.
 *
 *   node examples/ai-sdk.ts
 *
 * With no switchboard.yaml the embedded default answers: the echo model, no keys needed. With one,
 * its purposes, allowlists, fallbacks and limits apply (purpose "enrichments" here).
 */
import { createSwitchboard } from "@switchboard/ai-sdk";
import { openHub } from "@switchboard/hub";
import { generateText, streamText } from "ai";

const hub = await openHub();
try {
  const switchboard = createSwitchboard({ hub, actor: { id: "ada" } });

  const { text, providerMetadata } = await generateText({
    model: switchboard("purpose:enrichments"),
    prompt: "Summarise this row: Ada Lovelace, 1815, mathematician",
  });
  console.log(text);
  const answer = providerMetadata?.switchboard;
  console.log(`answered by ${answer?.model} for ${answer?.actor}, cost $${answer?.costUsd ?? "unpriced"}`);

  // The actor can change per request; the usage log and actor budgets follow it.
  const stream = streamText({
    model: switchboard("purpose:enrichments"),
    prompt: "Stream this, please",
    providerOptions: { switchboard: { actor: "grace" } },
  });
  for await (const delta of stream.textStream) process.stdout.write(delta);
  console.log(`\nstreamed for ${(await stream.providerMetadata)?.switchboard?.actor}`);
} finally {
  await hub.close(); // writes the usage rows
}
