import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { SwitchboardError } from "./errors.ts";

/** The per-user directory: `SWITCHBOARD_USER_PATH`, else `$XDG_CONFIG_HOME/switchboard`. */
export function userDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SWITCHBOARD_USER_PATH) return env.SWITCHBOARD_USER_PATH;
  const configHome = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(configHome, "switchboard");
}

/**
 * API keys stored by alias in `keys.json` under the user directory (mode 0600). The file is
 * re-read only when its modification time changes, so resolving a key costs one `stat`.
 */
export class KeyStore {
  readonly path: string;
  #cache: { mtimeMs: number; keys: Record<string, string> } | undefined;

  constructor(path: string = join(userDirectory(), "keys.json")) {
    this.path = path;
  }

  get(alias: string): string | undefined {
    const value = this.#read()[alias];
    return value ? value : undefined;
  }

  aliases(): string[] {
    return Object.keys(this.#read()).sort();
  }

  set(alias: string, value: string): void {
    if (!alias.trim()) throw new SwitchboardError("INVALID_INPUT", "A key alias cannot be empty.");
    if (!value.trim())
      throw new SwitchboardError("INVALID_INPUT", `The key for ${alias} is empty; nothing was stored.`);
    const keys = { ...this.#read(), [alias]: value.trim() };
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    // Write beside the file and rename, so a crash never leaves a half-written keys file.
    const temporary = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, this.path);
    this.#cache = undefined;
  }

  #read(): Record<string, string> {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.path).mtimeMs;
    } catch {
      return {};
    }
    if (this.#cache?.mtimeMs === mtimeMs) return this.#cache.keys;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.path, "utf8"));
    } catch (error) {
      throw new SwitchboardError(
        "INVALID_CONFIG",
        `The keys file ${this.path} is not valid JSON (${(error as Error).message}); fix or delete it.`,
        { path: this.path },
      );
    }
    const keys: Record<string, string> = {};
    if (parsed && typeof parsed === "object") {
      for (const [alias, value] of Object.entries(parsed)) if (typeof value === "string") keys[alias] = value;
    }
    this.#cache = { mtimeMs, keys };
    return keys;
  }
}
