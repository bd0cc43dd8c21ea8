/**
 * Who holds a job or a run: `host:pid[:more]`. On the same host a holder whose process is gone
 * is known dead at once, so a crashed run is taken over without waiting for its lease to expire.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";

export function processOwnerId(): string {
  return `${hostname()}:${process.pid}`;
}

/** True only when the owner's process is known to be gone (a killed process not yet reaped counts as gone). */
export function ownerIsGone(owner: string): boolean {
  const [host, pidText] = owner.split(":");
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
  return isZombie(pid);
}

/** On Linux a killed process stays in the table as a zombie until its parent reaps it. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return false;
  }
}
