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
 * 0005 is the admin UI's: purpose overrides, the audit log, login links, sessions, and
 * switchboard_usage_hourly — per UTC hour, purpose, model and actor, the sums of the usage rows,
 * kept by an insert trigger so usage charts read a few hundred rows instead of every response.
 * Pruning old usage rows leaves those sums (charts keep their history).
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
    name: "0005_admin",
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
      CREATE TABLE switchboard_usage_hourly (
        hour_start INTEGER NOT NULL,
        purpose TEXT NOT NULL,
        model TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        responses INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        cost_nanocents INTEGER NOT NULL,
        PRIMARY KEY (hour_start, purpose, model, actor_id)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO switchboard_usage_hourly
        SELECT created_at - created_at % 3600000, COALESCE(purpose, ''), model_answered, COALESCE(actor_id, ''),
          count(*), sum(status = 'error'), COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0),
          COALESCE(sum(cached_tokens), 0), COALESCE(sum(cost_nanocents), 0)
        FROM switchboard_usage GROUP BY 1, 2, 3, 4;
      CREATE TRIGGER switchboard_usage_hourly_add AFTER INSERT ON switchboard_usage BEGIN
        INSERT INTO switchboard_usage_hourly (hour_start, purpose, model, actor_id, responses, errors,
          input_tokens, output_tokens, cached_tokens, cost_nanocents)
        VALUES (NEW.created_at - NEW.created_at % 3600000, COALESCE(NEW.purpose, ''), NEW.model_answered,
          COALESCE(NEW.actor_id, ''), 1, NEW.status = 'error', COALESCE(NEW.input_tokens, 0),
          COALESCE(NEW.output_tokens, 0), COALESCE(NEW.cached_tokens, 0), COALESCE(NEW.cost_nanocents, 0))
        ON CONFLICT (hour_start, purpose, model, actor_id) DO UPDATE SET
          responses = responses + 1, errors = errors + excluded.errors,
          input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
          cached_tokens = cached_tokens + excluded.cached_tokens, cost_nanocents = cost_nanocents + excluded.cost_nanocents;
      END;`,
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
      CREATE TABLE switchboard_usage_hourly (
        hour_start BIGINT NOT NULL,
        purpose TEXT NOT NULL,
        model TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        responses BIGINT NOT NULL,
        errors BIGINT NOT NULL,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        cached_tokens BIGINT NOT NULL,
        cost_nanocents BIGINT NOT NULL,
        PRIMARY KEY (hour_start, purpose, model, actor_id)
      );
      CREATE FUNCTION switchboard_usage_hourly_add() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        -- Sorted, so concurrent batches lock the bucket rows in one order and cannot deadlock.
        INSERT INTO switchboard_usage_hourly AS h
          SELECT created_at - created_at % 3600000, COALESCE(purpose, ''), model_answered, COALESCE(actor_id, ''),
            count(*), count(*) FILTER (WHERE status = 'error'), COALESCE(sum(input_tokens), 0)::bigint,
            COALESCE(sum(output_tokens), 0)::bigint, COALESCE(sum(cached_tokens), 0)::bigint,
            COALESCE(sum(cost_nanocents), 0)::bigint
          FROM inserted GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (hour_start, purpose, model, actor_id) DO UPDATE SET
          responses = h.responses + EXCLUDED.responses, errors = h.errors + EXCLUDED.errors,
          input_tokens = h.input_tokens + EXCLUDED.input_tokens, output_tokens = h.output_tokens + EXCLUDED.output_tokens,
          cached_tokens = h.cached_tokens + EXCLUDED.cached_tokens, cost_nanocents = h.cost_nanocents + EXCLUDED.cost_nanocents;
        RETURN NULL;
      END $fn$;
      INSERT INTO switchboard_usage_hourly
        SELECT created_at - created_at % 3600000, COALESCE(purpose, ''), model_answered, COALESCE(actor_id, ''),
          count(*), count(*) FILTER (WHERE status = 'error'), COALESCE(sum(input_tokens), 0)::bigint,
          COALESCE(sum(output_tokens), 0)::bigint, COALESCE(sum(cached_tokens), 0)::bigint,
          COALESCE(sum(cost_nanocents), 0)::bigint
        FROM switchboard_usage GROUP BY 1, 2, 3, 4;
      CREATE TRIGGER switchboard_usage_hourly_add AFTER INSERT ON switchboard_usage
        REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION switchboard_usage_hourly_add();`,
  },
];
