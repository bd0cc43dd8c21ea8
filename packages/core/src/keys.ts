import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { SwitchboardError } from "./errors.ts";
import { rememberSecret } from "./scrub.ts";

/**
 * Whether a key can be sent in an HTTP header: no line break or other control character (a tab
 * aside), nothing beyond Latin-1. A key failing this was pasted or stored wrongly.
 */
export function isWellFormedKey(value: string): boolean {
  for (let index = 0; index < value.length; index++) {
    const code = value.charCodeAt(index);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f || code > 0xff) return false;
  }
  return true;
}

/** The per-user directory: `SWITCHBOARD_USER_PATH`, else `$XDG_CONFIG_HOME/switchboard`. */
export function userDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SWITCHBOARD_USER_PATH) return env.SWITCHBOARD_USER_PATH;
  const configHome = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(configHome, "switchboard");
}

/**
 * API keys stored by alias in `keys.json` under the user directory (the directory 0700, the file
 * 0600). The file is re-read only when its modification time changes, so resolving a key costs one
 * `stat`. Every key read is remembered by the secret scrubber.
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
    const key = value.trim();
    if (!key)
      throw new SwitchboardError("INVALID_INPUT", `The key for ${alias} is empty; nothing was stored.`);
    rememberSecret(key);
    if (!isWellFormedKey(key)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `The key for ${alias} contains a line break or another control character; nothing was stored. Give the key on one line.`,
        { alias },
      );
    }
    const keys = { ...this.#read(), [alias]: key };
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
      // The parser quotes the text it choked on, which may be a key: say only where it is.
      const where = /at position \d+(?: \(line \d+ column \d+\))?/.exec((error as Error).message)?.[0];
      throw new SwitchboardError(
        "INVALID_CONFIG",
        `The keys file ${this.path} is not valid JSON${where ? ` (${where})` : ""}; fix it or delete it and set the keys again.`,
        { path: this.path },
      );
    }
    const keys: Record<string, string> = {};
    if (parsed && typeof parsed === "object") {
      for (const [alias, value] of Object.entries(parsed)) {
        if (typeof value !== "string") continue;
        keys[alias] = value;
        rememberSecret(value);
      }
    }
    this.#cache = { mtimeMs, keys };
    return keys;
  }
}
