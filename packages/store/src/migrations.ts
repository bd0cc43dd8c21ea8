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
 * Conventions: timestamps are ms since the epoch (INTEGER / BIGINT) so both backends compare them
 * the same way; money is integer nanocents; SQLite tables are STRICT so a wrong type fails loudly.
 */

export interface Migration {
  name: string;
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS_TABLE = "switchboard_migrations";

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
];
