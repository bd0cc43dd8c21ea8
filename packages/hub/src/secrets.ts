import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { SwitchboardError } from "@switchboard/core";
import type { Store } from "@switchboard/store";
import type { Secret } from "./hooks.ts";

const ENV_PREFIX = "SWITCHBOARD_SECRET_";
const KEY_ENV = "SWITCHBOARD_SECRETS_KEY";
const IV_BYTES = 12;
const TAG_BYTES = 16;

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

  constructor(options: {
    env: NodeJS.ProcessEnv;
    store: () => Promise<Store>;
    registered: () => Promise<readonly Secret[]>;
  }) {
    this.#env = options.env;
    this.#openStore = options.store;
    this.#registered = options.registered;
  }

  static envVar(name: string): string {
    return `${ENV_PREFIX}${name}`;
  }

  /** The value, or undefined when the secret is set nowhere. Records the use in the store. */
  get(name: string, actorId?: string): Promise<string | undefined> {
    return this.#read(name, true, actorId);
  }

  /** Like `get`, without recording a use (for listings that only check a key exists). */
  peek(name: string): Promise<string | undefined> {
    return this.#read(name, false, undefined);
  }

  async #read(name: string, recordUse: boolean, actorId: string | undefined): Promise<string | undefined> {
    const fromEnv = this.#env[Secrets.envVar(name)];
    if (fromEnv) return fromEnv;
    const keyText = this.#env[KEY_ENV];
    // Without an encryption key nothing stored can be read, so the database is not even opened.
    if (!keyText) return undefined;
    const store = await this.#openStore();
    const stored = await store.getSecret(name);
    if (!stored) return undefined;
    const key = parseEncryptionKey(keyText);
    if (stored.keyId !== keyId(key)) {
      throw new SwitchboardError(
        "SECRET_ERROR",
        `Secret ${name} was stored with another ${KEY_ENV}; set the key it was stored with, or store the secret again.`,
        { secret: name },
      );
    }
    const value = decrypt(key, stored.ciphertext, name);
    if (recordUse) await store.markSecretUsed(name, stored.version, actorId);
    return value;
  }

  async set(
    name: string,
    value: string,
    options: { note?: string; actorId?: string } = {},
  ): Promise<{ version: number }> {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
      throw new SwitchboardError("INVALID_INPUT", `Secret names use letters, digits and _ (got "${name}").`);
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
    return store.putSecret({
      name,
      ciphertext: encrypt(key, value, name),
      keyId: keyId(key),
      note: options.note,
      actorId: options.actorId,
    });
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
