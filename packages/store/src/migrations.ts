/**
 * The one ordered list of schema migrations, with each dialect's SQL side by side so the two
 * backends cannot drift. Names are recorded in `switchboard_migrations`; never edit or reorder an
 * applied migration — append a new one.
 *
 * switchboard_hold_totals keeps, per ledger key and 10-minute bucket of creation time, the sum
 * of what the holds created in it count (see HOLD_AMOUNT_SQL); it is maintained in the same
 * transaction as every hold change, so "spent since T" reads whole buckets plus at most one
 * bucket's holds instead of every hold in the window.
 *
 * 0004 lets holds expire (a hold left by a killed process must not block a budget forever) and
 * usage rows record caller aborts. SQLite cannot change a CHECK constraint, so it rebuilds those
 * tables, and keys holds by (tx_id, ledger_key) without a separate rowid: one B-tree fewer to
 * write per reservation. The created_at index of holds goes (listings order by id or key).
 *
 * 0006 is the admin UI's: purpose overrides, the audit log, login links, sessions, and the usage
 * rollups (see usage-rollups.ts) that keep usage charts fast however long the log grows.
 *
 * Conventions: timestamps are ms since the epoch (INTEGER / BIGINT) so both backends compare them
 * the same way; money is integer nanocents; SQLite tables are STRICT so a wrong type fails loudly.
 */

import { ROLLUPS_SQL } from "./usage-rollups.ts";

export interface Migration {
  name: string;
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS_TABLE = "switchboard_migrations";

/** Holds written before 0004 had no expiry: they expire 15 minutes after creation (fixed forever). */
const EXPIRY_OF_EARLIER_HOLDS_MS = 900_000;

/**
 * 0004, both dialects: each bucket total also counts its holds still held and the earliest expiry
 * among them (never later than the true one), so a search for expired holds visits only buckets
 * that may have one — and the rows reserve and settle already write carry this for free.
 * 600000 is the bucket width (HOLD_BUCKET_MS).
 */
const openHoldColumns = (bigint: string) => `
      ALTER TABLE switchboard_hold_totals ADD COLUMN held_count INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE switchboard_hold_totals ADD COLUMN next_expiry ${bigint};
      UPDATE switchboard_hold_totals SET
        held_count = (SELECT COUNT(*) FROM switchboard_holds h WHERE h.ledger_key = switchboard_hold_totals.ledger_key
          AND h.created_at >= switchboard_hold_totals.bucket_start AND h.created_at < switchboard_hold_totals.bucket_start + 600000
          AND h.status = 'held'),
        next_expiry = (SELECT MIN(h.expires_at) FROM switchboard_holds h WHERE h.ledger_key = switchboard_hold_totals.ledger_key
          AND h.created_at >= switchboard_hold_totals.bucket_start AND h.created_at < switchboard_hold_totals.bucket_start + 600000
          AND h.status = 'held');`;

export const CREATE_MIGRATIONS_TABLE = {
  sqlite: `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`,
  postgres: `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`,
};

export const MIGRATIONS: readonly Migration[] = [
  {
    name: "0001_secrets",
    sqlite: `
      CREATE TABLE switchboard_secrets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        ciphertext BLOB NOT NULL,
        key_id TEXT NOT NULL,
        note TEXT,
        created_at INTEGER NOT NULL,
        created_by TEXT,
        deleted_at INTEGER,
        deleted_by TEXT,
        last_used_at INTEGER,
        last_used_by TEXT,
        UNIQUE (name, version)
      ) STRICT;`,
    postgres: `
      CREATE TABLE switchboard_secrets (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        ciphertext BYTEA NOT NULL,
        key_id TEXT NOT NULL,
        note TEXT,
        created_at BIGINT NOT NULL,
        created_by TEXT,
        deleted_at BIGINT,
        deleted_by TEXT,
        last_used_at BIGINT,
        last_used_by TEXT,
        UNIQUE (name, version)
      );`,
  },
  {
    name: "0002_usage",
    sqlite: `
      CREATE TABLE switchboard_usage (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        model_requested TEXT NOT NULL,
        model_answered TEXT NOT NULL,
        purpose TEXT,
        actor_id TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cached_tokens INTEGER,
        cost_nanocents INTEGER,
        duration_ms INTEGER,
        chain_id TEXT,
        group_id TEXT,
        conversation_id TEXT,
        status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
        error TEXT,
        prompt TEXT,
        system TEXT,
        response TEXT,
        tool_calls TEXT,
        tool_results TEXT
      ) STRICT;
      CREATE INDEX switchboard_usage_created ON switchboard_usage (created_at);
      CREATE INDEX switchboard_usage_purpose ON switchboard_usage (purpose, created_at);
      CREATE INDEX switchboard_usage_actor ON switchboard_usage (actor_id, created_at);`,
    postgres: `
      CREATE TABLE switchboard_usage (
        id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        model_requested TEXT NOT NULL,
        model_answered TEXT NOT NULL,
        purpose TEXT,
        actor_id TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cached_tokens INTEGER,
        cost_nanocents BIGINT,
        duration_ms INTEGER,
        chain_id TEXT,
        group_id TEXT,
        conversation_id TEXT,
        status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
        error TEXT,
        prompt TEXT,
        system TEXT,
        response TEXT,
        tool_calls TEXT,
        tool_results TEXT
      );
      CREATE INDEX switchboard_usage_created ON switchboard_usage (created_at);
      CREATE INDEX switchboard_usage_purpose ON switchboard_usage (purpose, created_at);
      CREATE INDEX switchboard_usage_actor ON switchboard_usage (actor_id, created_at);`,
  },
  {
    name: "0003_accounting",
    sqlite: `
      CREATE TABLE switchboard_holds (
        id INTEGER PRIMARY KEY,
        tx_id TEXT NOT NULL,
        ledger_key TEXT NOT NULL,
        reserved_nanocents INTEGER NOT NULL,
        settled_nanocents INTEGER,
        status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'rolled_back')),
        created_at INTEGER NOT NULL,
        settled_at INTEGER,
        actor_id TEXT,
        purpose TEXT,
        model TEXT,
        UNIQUE (tx_id, ledger_key)
      ) STRICT;
      CREATE INDEX switchboard_holds_key_created ON switchboard_holds (ledger_key, created_at);
      CREATE INDEX switchboard_holds_created ON switchboard_holds (created_at);
      CREATE TABLE switchboard_hold_totals (
        ledger_key TEXT NOT NULL,
        bucket_start INTEGER NOT NULL,
        amount_nanocents INTEGER NOT NULL,
        PRIMARY KEY (ledger_key, bucket_start)
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE switchboard_allowances (
        actor_id TEXT PRIMARY KEY,
        balance_nanocents INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE switchboard_allowance_holds (
        tx_id TEXT PRIMARY KEY,
        actor_id TEXT NOT NULL,
        reserved_nanocents INTEGER NOT NULL,
        settled_nanocents INTEGER,
        status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'rolled_back')),
        created_at INTEGER NOT NULL,
        settled_at INTEGER,
        purpose TEXT,
        model TEXT
      ) STRICT;
      CREATE INDEX switchboard_allowance_holds_actor ON switchboard_allowance_holds (actor_id, created_at);
      CREATE TABLE switchboard_allowance_ledger (
        id INTEGER PRIMARY KEY,
        actor_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('top_up', 'charge')),
        amount_nanocents INTEGER NOT NULL,
        balance_after_nanocents INTEGER NOT NULL,
        tx_id TEXT,
        note TEXT,
        created_at INTEGER NOT NULL,
        created_by TEXT
      ) STRICT;
      CREATE INDEX switchboard_allowance_ledger_actor ON switchboard_allowance_ledger (actor_id, created_at);`,
    postgres: `
      CREATE TABLE switchboard_holds (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tx_id TEXT NOT NULL,
        ledger_key TEXT NOT NULL,
        reserved_nanocents BIGINT NOT NULL,
        settled_nanocents BIGINT,
        status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'rolled_back')),
        created_at BIGINT NOT NULL,
        settled_at BIGINT,
        actor_id TEXT,
        purpose TEXT,
        model TEXT,
        UNIQUE (tx_id, ledger_key)
      );
      CREATE INDEX switchboard_holds_key_created ON switchboard_holds (ledger_key, created_at);
      CREATE INDEX switchboard_holds_created ON switchboard_holds (created_at);
      CREATE TABLE switchboard_hold_totals (
        ledger_key TEXT NOT NULL,
        bucket_start BIGINT NOT NULL,
        amount_nanocents BIGINT NOT NULL,
        PRIMARY KEY (ledger_key, bucket_start)
      );
      CREATE TABLE switchboard_allowances (
        actor_id TEXT PRIMARY KEY,
        balance_nanocents BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE switchboard_allowance_holds (
        tx_id TEXT PRIMARY KEY,
        actor_id TEXT NOT NULL,
        reserved_nanocents BIGINT NOT NULL,
        settled_nanocents BIGINT,
        status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'rolled_back')),
        created_at BIGINT NOT NULL,
        settled_at BIGINT,
        purpose TEXT,
        model TEXT
      );
      CREATE INDEX switchboard_allowance_holds_actor ON switchboard_allowance_holds (actor_id, created_at);
      CREATE TABLE switchboard_allowance_ledger (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        actor_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('top_up', 'charge')),
        amount_nanocents BIGINT NOT NULL,
        balance_after_nanocents BIGINT NOT NULL,
        tx_id TEXT,
        note TEXT,
        created_at BIGINT NOT NULL,
        created_by TEXT
      );
      CREATE INDEX switchboard_allowance_ledger_actor ON switchboard_allowance_ledger (actor_id, created_at);`,
  },
  {
    name: "0004_hold_expiry_and_aborted_usage",
    sqlite: `
      CREATE TABLE switchboard_holds_next (
        tx_id TEXT NOT NULL,
        ledger_key TEXT NOT NULL,
        reserved_nanocents INTEGER NOT NULL,
        settled_nanocents INTEGER,
        status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'rolled_back', 'expired')),
        created_at INTEGER NOT NULL,
        settled_at INTEGER,
        expires_at INTEGER NOT NULL,
        actor_id TEXT,
        purpose TEXT,
        model TEXT,
        PRIMARY KEY (tx_id, ledger_key)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO switchboard_holds_next (tx_id, ledger_key, reserved_nanocents, settled_nanocents, status,
          created_at, settled_at, expires_at, actor_id, purpose, model)
        SELECT tx_id, ledger_key, reserved_nanocents, settled_nanocents, status,
          created_at, settled_at, created_at + ${EXPIRY_OF_EARLIER_HOLDS_MS}, actor_id, purpose, model FROM switchboard_holds;
      DROP TABLE switchboard_holds;
      ALTER TABLE switchboard_holds_next RENAME TO switchboard_holds;
      CREATE INDEX switchboard_holds_key_created ON switchboard_holds (ledger_key, created_at);
      ${openHoldColumns("INTEGER")}

      CREATE TABLE switchboard_allowance_holds_next (
        tx_id TEXT PRIMARY KEY,
        actor_id TEXT NOT NULL,
        reserved_nanocents INTEGER NOT NULL,
        settled_nanocents INTEGER,
        status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'rolled_back', 'expired')),
        created_at INTEGER NOT NULL,
        settled_at INTEGER,
        expires_at INTEGER NOT NULL,
        purpose TEXT,
        model TEXT
      ) STRICT, WITHOUT ROWID;
      INSERT INTO switchboard_allowance_holds_next (tx_id, actor_id, reserved_nanocents, settled_nanocents, status,
          created_at, settled_at, expires_at, purpose, model)
        SELECT tx_id, actor_id, reserved_nanocents, settled_nanocents, status,
          created_at, settled_at, created_at + ${EXPIRY_OF_EARLIER_HOLDS_MS}, purpose, model FROM switchboard_allowance_holds;
      DROP TABLE switchboard_allowance_holds;
      ALTER TABLE switchboard_allowance_holds_next RENAME TO switchboard_allowance_holds;
      CREATE INDEX switchboard_allowance_holds_actor_status ON switchboard_allowance_holds (actor_id, status, expires_at);

      CREATE TABLE switchboard_usage_next (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        model_requested TEXT NOT NULL,
        model_answered TEXT NOT NULL,
        purpose TEXT,
        actor_id TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cached_tokens INTEGER,
        cost_nanocents INTEGER,
        duration_ms INTEGER,
        chain_id TEXT,
        group_id TEXT,
        conversation_id TEXT,
        status TEXT NOT NULL CHECK (status IN ('ok', 'error', 'aborted')),
        error TEXT,
        prompt TEXT,
        system TEXT,
        response TEXT,
        tool_calls TEXT,
        tool_results TEXT
      ) STRICT;
      INSERT INTO switchboard_usage_next SELECT * FROM switchboard_usage;
      DROP TABLE switchboard_usage;
      ALTER TABLE switchboard_usage_next RENAME TO switchboard_usage;
      CREATE INDEX switchboard_usage_created ON switchboard_usage (created_at);
      CREATE INDEX switchboard_usage_purpose ON switchboard_usage (purpose, created_at);
      CREATE INDEX switchboard_usage_actor ON switchboard_usage (actor_id, created_at);
      CREATE INDEX switchboard_usage_chain ON switchboard_usage (chain_id) WHERE chain_id IS NOT NULL;`,
    postgres: `
      ALTER TABLE switchboard_holds ADD COLUMN expires_at BIGINT;
      UPDATE switchboard_holds SET expires_at = created_at + ${EXPIRY_OF_EARLIER_HOLDS_MS};
      ALTER TABLE switchboard_holds ALTER COLUMN expires_at SET NOT NULL;
      ALTER TABLE switchboard_holds DROP CONSTRAINT switchboard_holds_status_check;
      ALTER TABLE switchboard_holds ADD CONSTRAINT switchboard_holds_status_check
        CHECK (status IN ('held', 'settled', 'rolled_back', 'expired'));
      DROP INDEX switchboard_holds_created;
      ${openHoldColumns("BIGINT")}

      ALTER TABLE switchboard_allowance_holds ADD COLUMN expires_at BIGINT;
      UPDATE switchboard_allowance_holds SET expires_at = created_at + ${EXPIRY_OF_EARLIER_HOLDS_MS};
      ALTER TABLE switchboard_allowance_holds ALTER COLUMN expires_at SET NOT NULL;
      ALTER TABLE switchboard_allowance_holds DROP CONSTRAINT switchboard_allowance_holds_status_check;
      ALTER TABLE switchboard_allowance_holds ADD CONSTRAINT switchboard_allowance_holds_status_check
        CHECK (status IN ('held', 'settled', 'rolled_back', 'expired'));
      DROP INDEX switchboard_allowance_holds_actor;
      CREATE INDEX switchboard_allowance_holds_actor_status ON switchboard_allowance_holds (actor_id, status, expires_at);

      ALTER TABLE switchboard_usage DROP CONSTRAINT switchboard_usage_status_check;
      ALTER TABLE switchboard_usage ADD CONSTRAINT switchboard_usage_status_check
        CHECK (status IN ('ok', 'error', 'aborted'));
      CREATE INDEX switchboard_usage_chain ON switchboard_usage (chain_id) WHERE chain_id IS NOT NULL;`,
  },
  {
    name: "0005_gateway_tokens",
    sqlite: `
      CREATE TABLE switchboard_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        actor_id TEXT NOT NULL,
        purposes TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        last_used_at INTEGER,
        revoked_at INTEGER
      ) STRICT;
      CREATE UNIQUE INDEX switchboard_tokens_active_name ON switchboard_tokens (name) WHERE revoked_at IS NULL;`,
    postgres: `
      CREATE TABLE switchboard_tokens (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        actor_id TEXT NOT NULL,
        purposes TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        last_used_at BIGINT,
        revoked_at BIGINT
      );
      CREATE UNIQUE INDEX switchboard_tokens_active_name ON switchboard_tokens (name) WHERE revoked_at IS NULL;`,
  },
  {
    name: "0006_admin",
    sqlite: `
      CREATE TABLE switchboard_purpose_overrides (
        purpose TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        updated_by TEXT NOT NULL
      ) STRICT;
      CREATE TABLE switchboard_audit (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        actor_id TEXT NOT NULL,
        action TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target TEXT NOT NULL,
        before_state TEXT,
        after_state TEXT,
        instance TEXT NOT NULL
      ) STRICT;
      CREATE INDEX switchboard_audit_created ON switchboard_audit (created_at, id);
      CREATE INDEX switchboard_audit_target ON switchboard_audit (target_type, target, created_at);
      CREATE TABLE switchboard_login_links (
        hash TEXT PRIMARY KEY,
        actor_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
      ) STRICT;
      CREATE TABLE switchboard_sessions (
        hash TEXT PRIMARY KEY,
        actor_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        ended_at INTEGER
      ) STRICT;
      CREATE TABLE switchboard_admin_keys (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;
      ${ROLLUPS_SQL.sqlite}`,
    postgres: `
      CREATE TABLE switchboard_purpose_overrides (
        purpose TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        updated_by TEXT NOT NULL
      );
      CREATE TABLE switchboard_audit (
        id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        actor_id TEXT NOT NULL,
        action TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target TEXT NOT NULL,
        before_state TEXT,
        after_state TEXT,
        instance TEXT NOT NULL
      );
      CREATE INDEX switchboard_audit_created ON switchboard_audit (created_at, id COLLATE "C");
      CREATE INDEX switchboard_audit_target ON switchboard_audit (target_type, target, created_at);
      CREATE TABLE switchboard_login_links (
        hash TEXT PRIMARY KEY,
        actor_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT
      );
      CREATE TABLE switchboard_sessions (
        hash TEXT PRIMARY KEY,
        actor_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        ended_at BIGINT
      );
      CREATE TABLE switchboard_admin_keys (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      ${ROLLUPS_SQL.postgres}`,
  },
];
