/**
 * Who may use the data tools. The library asks a `can(action, actor)` callback before anything that
 * changes data or spends money; the server builds one from the `permissions:` configuration, the
 * CLI runs with full permission.
 */
import { SwitchboardError } from "@switchboard/core";
import type { Actor } from "@switchboard/hub";

/** `enrich`: start, pause, resume or cancel enrichment jobs; `extract`: insert extracted rows; `ask`: use the SQL assistant. */
export type DataAction = "enrich" | "extract" | "ask";

export type PermissionCheck = (action: DataAction, actor: Actor | undefined) => boolean | Promise<boolean>;

/** Every actor may do everything: what the CLI, run by the database's owner, uses. */
export const allowAll: PermissionCheck = () => true;

export async function requirePermission(
  can: PermissionCheck,
  action: DataAction,
  actor: Actor | undefined,
): Promise<void> {
  if (await can(action, actor)) return;
  const who = actor ? `Actor "${actor.id}"` : "An anonymous user";
  throw new SwitchboardError(
    "PROMPT_REFUSED",
    `${who} may not ${action}; grant it with permissions: {${action}: [${actor?.id ?? "ACTOR_ID"}]} in switchboard.yaml.`,
    { action, actor: actor?.id, permission: action },
  );
}
