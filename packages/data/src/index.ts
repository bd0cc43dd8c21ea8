export type { DataAction, PermissionCheck } from "./access.ts";
export { allowAll } from "./access.ts";
export type {
  EnrichmentSpec,
  EnrichmentsOptions,
  JobRun,
  PromptPreview,
  StartOptions,
} from "./enrich/enrichments.ts";
export { Enrichments, resumeInterruptedJobs } from "./enrich/enrichments.ts";
export type { EnrichmentJob, JobError, JobProgressRecord, JobStatus } from "./enrich/jobs.ts";
export type { JobProgress } from "./enrich/runner.ts";
export { fillTemplate, templateColumns } from "./enrich/template.ts";
export {
  dataPlugins,
  ENRICHMENTS_PURPOSE,
  EXTRACT_PURPOSE,
  enrichmentsPlugin,
  extractPlugin,
  SQL_ASSISTANT_PURPOSE,
  sqlAssistantPlugin,
} from "./purposes.ts";
