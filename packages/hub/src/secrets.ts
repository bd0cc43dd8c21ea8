import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { describeError, rememberSecret, SwitchboardError } from "@switchboard/core";
import type { Store } from "@switchboard/store";
import type { Secret } from "./types.ts";

const ENV_PREFIX = "SWITCHBOARD_SECRET_";
const KEY_ENV = "SWITCHBOARD_SECRETS_KEY";
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Long enough to spare the store a read per prompt, short enough that another process's change shows soon. */
const DEFAULT_CACHE_TTL_MS = 5_000;
/** Last use is a "when was this key last needed" signal, so one write a minute per secret and actor is plenty. */
const USE_RECORD_INTERVAL_MS = 60_000;

export interface SecretsOptions {
  env: NodeJS.ProcessEnv;
  store: () => Promise<Store>;
  registered: () => Promise<readonly Secret[]>;
  /** How long a value read from the store is reused (default 5 s). */
  cacheTtlMs?: number | undefined;
  /** The clock, in epoch ms (tests move it). */
  now?: (() => number) | undefined;
}

interface StoredValue {
  value: string;
  version: number;
}

interface CacheEntry {
  read: Promise<StoredValue | undefined>;
  expiresAt: number;
}

/** A character that cannot be part of a key sent in an HTTP header: line breaks and other controls. */
function hasControlCharacter(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

export interface SecretListing {
  name: string;
  description: string | undefined;
  /** Where to obtain a value, when the registering plugin said. */
  obtainUrl: string | undefined;
  /** Where the value comes from: the environment wins over the store. */
  source: "env" | "store" | "unset";
  envVar: string;
  version: number | undefined;
  updatedAt: string | undefined;
  lastUsedAt: string | undefined;
  lastUsedBy: string | undefined;
}

/** A 32-byte key given as 64 hex characters or as base64. */
function parseEncryptionKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, "hex")
    : Buffer.from(trimmed, "base64");
  if (key.length !== 32) {
    throw new SwitchboardError(
      "SECRET_ERROR",
      `${KEY_ENV} must be 32 bytes as 64 hex characters or base64; generate one with 'switchboard secrets generate-key'.`,
    );
  }
  return key;
}

export function generateEncryptionKey(): string {
  return randomBytes(32).toString("base64");
}

/**
 * Named secrets: `SWITCHBOARD_SECRET_<NAME>` in the environment, else the encrypted store
 * (AES-256-GCM, the secret's name bound as associated data so a ciphertext cannot be moved to
 * another name). Values never appear in errors or listings.
 */
export class Secrets {
  readonly #env: NodeJS.ProcessEnv;
  readonly #openStore: () => Promise<Store>;
  readonly #registered: () => Promise<readonly Secret[]>;
  readonly #cacheTtlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CacheEntry>();
  /** When each secret's use was last written, per actor. */
  readonly #lastRecorded = new Map<string, number>();
  readonly #pendingWrites = new Set<Promise<void>>();

  constructor(options: SecretsOptions) {
    this.#env = options.env;
    this.#openStore = options.store;
    this.#registered = options.registered;
    this.#cacheTtlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    this.#now = options.now ?? Date.now;
  }

  static envVar(name: string): string {
    return `${ENV_PREFIX}${name}`;
  }

  /** The value, or undefined when the secret is set nowhere. Records the use in the store. */
  async get(name: string, actorId?: string): Promise<string | undefined> {
    const value = await this.peek(name);
    if (value !== undefined) await this.recordUse(name, actorId);
    return value;
  }

  /**
   * The value without recording a use (key checks, listings). Values from the store are cached
   * for a few seconds; setting a secret through this object refreshes it at once.
   */
  async peek(name: string): Promise<string | undefined> {
    const fromEnv = this.#fromEnv(name);
    if (fromEnv !== undefined) return fromEnv;
    return (await this.#stored(name))?.value;
  }

  /**
   * Records that a request used the stored secret (environment values have no record). Written at
   * most once a minute per secret and actor; never rejects (a failed write is a warning).
   */
  recordUse(name: string, actorId?: string): Promise<void> {
    if (this.#fromEnv(name) !== undefined || !this.#env[KEY_ENV]) return Promise.resolve();
    const recordKey = `${name}\u0000${actorId ?? ""}`;
    const now = this.#now();
    const last = this.#lastRecorded.get(recordKey);
    if (last !== undefined && now - last < USE_RECORD_INTERVAL_MS) return Promise.resolve();
    this.#lastRecorded.set(recordKey, now);
    const write = (async () => {
      try {
        const stored = await this.#stored(name);
        if (stored) await (await this.#openStore()).markSecretUsed(name, stored.version, actorId);
      } catch (error) {
        this.#lastRecorded.delete(recordKey);
        process.emitWarning(`Could not record the use of secret ${name}: ${describeError(error)}`, {
          code: "SWITCHBOARD_SECRET_USE",
        });
      }
    })();
    this.#pendingWrites.add(write);
    void write.finally(() => this.#pendingWrites.delete(write));
    return write;
  }

  /** Waits for use records still being written (before the store closes). */
  async settled(): Promise<void> {
    while (this.#pendingWrites.size > 0) await Promise.all(this.#pendingWrites);
  }

  #fromEnv(name: string): string | undefined {
    // Surrounding whitespace (a trailing newline from `echo`) is never part of a key.
    const value = this.#env[Secrets.envVar(name)]?.trim();
    if (!value) return undefined;
    rememberSecret(value);
    return value;
  }

  #stored(name: string): Promise<StoredValue | undefined> {
    // Without an encryption key nothing stored can be read, so the database is not even opened.
    if (!this.#env[KEY_ENV]) return Promise.resolve(undefined);
    const now = this.#now();
    const cached = this.#cache.get(name);
    if (cached && cached.expiresAt > now) return cached.read;
    const read = this.#load(name);
    const entry = { read, expiresAt: now + this.#cacheTtlMs };
    this.#cache.set(name, entry);
    // A failed read (a wrong encryption key, a storage error) is tried again next time.
    read.catch(() => {
      if (this.#cache.get(name) === entry) this.#cache.delete(name);
    });
    return read;
  }

  async #load(name: string): Promise<StoredValue | undefined> {
    const store = await this.#openStore();
    const stored = await store.getSecret(name);
    if (!stored) return undefined;
    const key = parseEncryptionKey(this.#env[KEY_ENV] ?? "");
    if (stored.keyId !== keyId(key)) {
      throw new SwitchboardError(
        "SECRET_ERROR",
        `Secret ${name} was stored with another ${KEY_ENV}; set the key it was stored with, or store the secret again.`,
        { secret: name },
      );
    }
    const value = decrypt(key, stored.ciphertext, name);
    rememberSecret(value);
    return { value, version: stored.version };
  }

  /**
   * Stores a new version, encrypted. Surrounding whitespace is trimmed; a value that still holds a
   * line break or another control character is refused (it could never be sent as a key).
   */
  async set(
    name: string,
    value: string,
    options: { note?: string; actorId?: string } = {},
  ): Promise<{ version: number }> {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
      throw new SwitchboardError("INVALID_INPUT", `Secret names use letters, digits and _ (got "${name}").`);
    }
    const trimmed = value.trim();
    rememberSecret(trimmed);
    if (!trimmed) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Secret ${name} needs a value: pipe it in, e.g. echo "$VALUE" | switchboard secrets set ${name}.`,
        { secret: name },
      );
    }
    if (hasControlCharacter(trimmed)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `The value for secret ${name} contains a line break or another control character; store the key on one line, without them.`,
        { secret: name },
      );
    }
    const keyText = this.#env[KEY_ENV];
    if (!keyText) {
      throw new SwitchboardError(
        "SECRET_ERROR",
        `Set ${KEY_ENV} to store secrets encrypted (generate one with 'switchboard secrets generate-key'), or set ${Secrets.envVar(name)} in the environment instead.`,
      );
    }
    const key = parseEncryptionKey(keyText);
    const store = await this.#openStore();
    const result = await store.putSecret({
      name,
      ciphertext: encrypt(key, trimmed, name),
      keyId: keyId(key),
      note: options.note,
      actorId: options.actorId,
    });
    this.#cache.delete(name);
    return result;
  }

  /** Registered and stored secrets with where each is set; never a value. */
  async list(): Promise<SecretListing[]> {
    const registered = await this.#registered();
    const stored = this.#env[KEY_ENV] ? await (await this.#openStore()).listSecrets() : [];
    const storedByName = new Map(stored.map((secret) => [secret.name, secret]));
    const names = [...new Set([...registered.map((secret) => secret.name), ...storedByName.keys()])];
    return names.map((name) => {
      const row = storedByName.get(name);
      const envVar = Secrets.envVar(name);
      const declared = registered.find((secret) => secret.name === name);
      return {
        name,
        description: declared?.description,
        obtainUrl: declared?.obtainUrl,
        source: this.#env[envVar] ? "env" : row ? "store" : "unset",
        envVar,
        version: row?.version,
        updatedAt: row?.updatedAt.toISOString(),
        lastUsedAt: row?.lastUsedAt?.toISOString(),
        lastUsedBy: row?.lastUsedBy,
      };
    });
  }
}

function keyId(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

function encrypt(key: Buffer, value: string, name: string): Uint8Array {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(name));
  const data = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), data]);
}

function decrypt(key: Buffer, ciphertext: Uint8Array, name: string): string {
  const bytes = Buffer.from(ciphertext);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(name));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
      "utf8",
    );
  } catch {
    throw new SwitchboardError(
      "SECRET_ERROR",
      `Secret ${name} cannot be decrypted: the stored value is damaged.`,
      {
        secret: name,
      },
    );
  }
}
