/**
 * The data tools as hub plugins: each registers the purpose it asks models for, so routing,
 * allowlists, budgets and the usage log apply, and `switchboard purposes` lists them.
 */
import type { SwitchboardPlugin } from "@switchboard/hub";

export const ENRICHMENTS_PURPOSE = "enrichments";
export const EXTRACT_PURPOSE = "extract";
export const SQL_ASSISTANT_PURPOSE = "sql-assistant";

export function enrichmentsPlugin(): SwitchboardPlugin {
  return {
    name: "data-enrichments",
    registerPurposes: () => [
      {
        name: ENRICHMENTS_PURPOSE,
        description: "Run a prompt over the rows of a table and write each answer into a column",
      },
    ],
  };
}

export function extractPlugin(): SwitchboardPlugin {
  return {
    name: "data-extract",
    registerPurposes: () => [
      {
        name: EXTRACT_PURPOSE,
        description:
          "Extract structured rows from text and images into tables (needs a model with JSON schema support)",
      },
    ],
  };
}

export function sqlAssistantPlugin(): SwitchboardPlugin {
  return {
    name: "data-sql-assistant",
    registerPurposes: () => [
      {
        name: SQL_ASSISTANT_PURPOSE,
        description: "Turn a question about a database into a read-only SQL query",
      },
    ],
  };
}

/** All three data tools, for `plugins` when opening a hub. */
export function dataPlugins(): SwitchboardPlugin[] {
  return [enrichmentsPlugin(), extractPlugin(), sqlAssistantPlugin()];
}
