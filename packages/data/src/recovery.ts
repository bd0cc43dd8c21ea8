/**
 * What a server calls for each database when it starts: enrichment jobs whose process died are
 * resumed, and extraction runs that died mid-reply are closed as `interrupted`.
 */
import { describeError } from "@switchboard/core";
import { Enrichments, type EnrichmentsOptions, type JobRun } from "./enrich/enrichments.ts";
import { leaseIsLive } from "./enrich/jobs.ts";
import type { JobProgress } from "./enrich/runner.ts";
import { Extraction, type ExtractionRun } from "./extract/extraction.ts";

export interface RecoveryResult {
  /** The enrichment jobs now running again. */
  resumed: JobRun[];
  /** The extraction runs marked interrupted. */
  interrupted: ExtractionRun[];
}

/**
 * Resumes every enrichment job of the database whose run died (status `running` with no live
 * lease) or that was created and never started, each with the actor that last ran it; marks dead
 * extraction runs `interrupted`. A job that cannot resume (its model is no longer allowed…) is
 * reported as a warning and left as it is.
 */
export async function resumeInterruptedJobs(
  database: string,
  options: Omit<EnrichmentsOptions, "database"> & {
    onProgress?: ((progress: JobProgress) => void) | undefined;
  },
): Promise<RecoveryResult> {
  const enrichments = new Enrichments({ ...options, database });
  const resumed: JobRun[] = [];
  try {
    for (const job of enrichments.jobs()) {
      const interrupted = (job.status === "running" && !leaseIsLive(job)) || job.status === "pending";
      if (!interrupted) continue;
      const actor = job.actorId ? { id: job.actorId } : undefined;
      try {
        resumed.push(await enrichments.start(job.id, actor, { onProgress: options.onProgress }));
      } catch (error) {
        process.emitWarning(
          `Could not resume enrichment job ${job.id} of ${database}: ${describeError(error)}`,
        );
      }
    }
  } finally {
    enrichments.close();
  }
  const extraction = new Extraction({ hub: options.hub, database });
  try {
    return { resumed, interrupted: extraction.markInterrupted() };
  } finally {
    extraction.close();
  }
}
