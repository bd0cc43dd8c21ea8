export type { DataAction, PermissionCheck } from "./access.ts";
export { allowAll } from "./access.ts";
export type {
  AskAttempt,
  AskRequest,
  AssistantAnswer,
  QueryResult,
  SqlAssistantOptions,
} from "./assistant/assistant.ts";
export { checkReadOnlySql, SqlAssistant, splitReply } from "./assistant/assistant.ts";
export type { RowsPage, RowsQuery, TableSummary } from "./browse.ts";
export { listTables, tableRows } from "./browse.ts";
export type {
  EnrichmentSpec,
  EnrichmentsOptions,
  JobRun,
  PromptPreview,
  StartOptions,
} from "./enrich/enrichments.ts";
export { Enrichments } from "./enrich/enrichments.ts";
export type { EnrichmentJob, JobError, JobProgressRecord, JobStatus } from "./enrich/jobs.ts";
export { isInterrupted } from "./enrich/jobs.ts";
export type { JobProgress } from "./enrich/runner.ts";
export { fillTemplate, templateColumns } from "./enrich/template.ts";
export type {
  ExtractField,
  ExtractInput,
  ExtractionOptions,
  ExtractionRun,
  ExtractionStatus,
  ExtractRequest,
  FieldType,
} from "./extract/extraction.ts";
export { Extraction, extractionSchema, parseField, removeNulBytes } from "./extract/extraction.ts";
export { ItemStreamParser } from "./extract/item-stream.ts";
export {
  dataPlugins,
  ENRICHMENTS_PURPOSE,
  EXTRACT_PURPOSE,
  enrichmentsPlugin,
  extractPlugin,
  SQL_ASSISTANT_PURPOSE,
  sqlAssistantPlugin,
} from "./purposes.ts";
export type { RecoveryResult } from "./recovery.ts";
export { resumeInterruptedJobs } from "./recovery.ts";

import { dataPlugins as plugins } from "./purposes.ts";

/** `plugins: ["@switchboard/data"]` in switchboard.yaml registers the data tools' purposes with any hub. */
export default plugins;
