/**
 * Who may do what in the admin UI and the data tools: `permissions:` in the configuration maps each
 * action to the actor ids allowed to do it (`"*"`: every signed-in actor). The actor `root` may do
 * everything, so a fresh install is administered by whoever runs `switchboard serve --root`.
 */

export const PERMISSION_ACTIONS = [
  "view-usage",
  "manage-purposes",
  "manage-secrets",
  "manage-tokens",
  "manage-budgets",
  "use-playground",
  "view-prompts",
  "enrich",
  "extract",
  "ask",
] as const;

export type PermissionAction = (typeof PERMISSION_ACTIONS)[number];

/** The actor that may do everything. */
export const ROOT_ACTOR = "root";
/** In a grant, every signed-in actor. */
export const ANY_ACTOR = "*";

/** `permissions:` from the configuration: action → actor ids. */
export type PermissionGrants = Partial<Record<PermissionAction, readonly string[]>>;

export class Permissions {
  readonly #grants: () => PermissionGrants;

  /** Reads the grants on every check, so a changed configuration applies at once. */
  constructor(grants: () => PermissionGrants) {
    this.#grants = grants;
  }

  /** `actor`: an actor id, or an actor object (`{id}`); undefined is the anonymous user, who may do nothing. */
  can(actor: { id: string } | string | undefined, action: PermissionAction): boolean {
    const id = typeof actor === "string" ? actor : actor?.id;
    if (!id) return false;
    if (id === ROOT_ACTOR) return true;
    const granted = this.#grants()[action];
    // "*" grants an action to every signed-in actor.
    return granted !== undefined && (granted.includes(id) || granted.includes(ANY_ACTOR));
  }

  /** Every action the actor may do, in the order of `PERMISSION_ACTIONS`. */
  actionsOf(actor: { id: string } | string | undefined): PermissionAction[] {
    return PERMISSION_ACTIONS.filter((action) => this.can(actor, action));
  }
}
