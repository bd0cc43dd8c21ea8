/**
 * Gateway tokens, written once for both backends: the SQL below uses `$n` placeholders, which
 * PostgreSQL takes as they are and SQLite binds by number. Only hashes are stored.
 */
import { SwitchboardError } from "@switchboard/core";
import { isUniqueViolation, type Row, requireText, toMs } from "./shared.ts";
import type { StoredToken } from "./types.ts";

/** Runs one statement: its rows (`all`) or how many rows it changed (`run`). */
export interface TokenStatements {
  all(operation: string, sql: string, params: readonly unknown[]): Promise<Row[]>;
  run(operation: string, sql: string, params: readonly unknown[]): Promise<number>;
}

const TOKEN_COLUMNS =
  "name, token_hash, actor_id, purposes, created_at, expires_at, last_used_at, revoked_at";

/** Params: name, hash, actor, purposes (a JSON array), created at, expires at. */
export const INSERT_TOKEN_SQL = `
  INSERT INTO switchboard_tokens (name, token_hash, actor_id, purposes, created_at, expires_at)
  VALUES ($1, $2, $3, $4, $5, $6)`;

export const FIND_TOKEN_SQL = `SELECT ${TOKEN_COLUMNS} FROM switchboard_tokens WHERE token_hash = $1`;

export const LIST_TOKENS_SQL = `SELECT ${TOKEN_COLUMNS} FROM switchboard_tokens ORDER BY created_at, id`;

/** Params: now, name. */
export const REVOKE_TOKEN_SQL =
  "UPDATE switchboard_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL";

/** Params: when, hash. Never moves last use backwards (instances may report out of order). */
export const MARK_TOKEN_USED_SQL = `
  UPDATE switchboard_tokens SET last_used_at = $1
  WHERE token_hash = $2 AND (last_used_at IS NULL OR last_used_at < $1)`;

function optDate(value: unknown): Date | undefined {
  return value === null || value === undefined ? undefined : new Date(Number(value));
}

export function mapToken(row: Row): StoredToken {
  const purposes: unknown = JSON.parse(String(row.purposes));
  return {
    name: String(row.name),
    hash: String(row.token_hash),
    actor: String(row.actor_id),
    purposes: Array.isArray(purposes) ? purposes.map(String) : [],
    createdAt: new Date(Number(row.created_at)),
    expiresAt: optDate(row.expires_at),
    lastUsedAt: optDate(row.last_used_at),
    revokedAt: optDate(row.revoked_at),
  };
}

/** The token methods of a `Store`, over one backend's statements. */
export class TokenTable {
  readonly #sql: TokenStatements;

  constructor(statements: TokenStatements) {
    this.#sql = statements;
  }

  async insertToken(token: StoredToken): Promise<void> {
    const params = [
      requireText(token.name, "name"),
      requireText(token.hash, "hash"),
      requireText(token.actor, "actor"),
      JSON.stringify(token.purposes),
      toMs(token.createdAt, "createdAt"),
      token.expiresAt === undefined ? null : toMs(token.expiresAt, "expiresAt"),
    ];
    try {
      await this.#sql.run("insertToken", INSERT_TOKEN_SQL, params);
    } catch (error) {
      const cause = (error as { cause?: unknown } | null)?.cause;
      if (!isUniqueViolation(error) && !isUniqueViolation(cause)) throw error;
      throw new SwitchboardError(
        "INVALID_INPUT",
        `A token named ${token.name} already exists: revoke it first ('switchboard tokens revoke ${token.name}') or pick another name.`,
        { name: token.name },
      );
    }
  }

  async findTokenByHash(hash: string): Promise<StoredToken | undefined> {
    const [row] = await this.#sql.all("findTokenByHash", FIND_TOKEN_SQL, [hash]);
    return row === undefined ? undefined : mapToken(row);
  }

  async listTokens(): Promise<StoredToken[]> {
    return (await this.#sql.all("listTokens", LIST_TOKENS_SQL, [])).map(mapToken);
  }

  async revokeToken(name: string, at: Date): Promise<boolean> {
    return (await this.#sql.run("revokeToken", REVOKE_TOKEN_SQL, [toMs(at, "at"), name])) > 0;
  }

  async markTokenUsed(hash: string, at: Date): Promise<void> {
    await this.#sql.run("markTokenUsed", MARK_TOKEN_USED_SQL, [toMs(at, "at"), hash]);
  }
}
