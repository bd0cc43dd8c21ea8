/**
 * The one secret scrubber. Every error text, usage row and log line passes through
 * `scrubSecrets`, which removes every key value this process has resolved (`rememberSecret`) and
 * the password of any URL with credentials. The registry lives on `globalThis` under a
 * `Symbol.for` key so that two copies of the core (a plugin bringing its own) share it.
 */

const REGISTRY = Symbol.for("switchboard.secrets");
/** Shorter values would redact ordinary words; real keys are far longer. */
const MIN_SECRET_LENGTH = 8;
const REDACTED = "[redacted]";

interface SecretRegistry {
  values: Set<string>;
  /** Longest first, so a key that contains another key is removed whole. */
  sorted: string[] | undefined;
}

function registry(): SecretRegistry {
  const holder = globalThis as { [REGISTRY]?: SecretRegistry };
  holder[REGISTRY] ??= { values: new Set(), sorted: undefined };
  return holder[REGISTRY];
}

/** Remembers a secret value so that `scrubSecrets` removes it from any text from now on. */
export function rememberSecret(value: string | undefined): void {
  if (!value) return;
  const secrets = registry();
  // Keys are remembered on every request: the common case must not allocate.
  if (secrets.values.has(value)) return;
  // A malformed key's lines may be printed apart (a header error shows the value split).
  const lines = value.split(/[\r\n]+/).map((line) => line.trim());
  for (const candidate of new Set([value, value.trim(), ...lines])) {
    if (candidate.length < MIN_SECRET_LENGTH || secrets.values.has(candidate)) continue;
    secrets.values.add(candidate);
    secrets.sorted = undefined;
  }
}

const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*:[^\s/@]*@/gi;

/** Removes remembered secret values and URL credentials from a text. */
export function scrubSecrets(text: string): string {
  const secrets = registry();
  // Every usage row's texts pass here: look for a URL before running the expression.
  let scrubbed = text.includes("://") ? text.replace(URL_CREDENTIALS, `$1${REDACTED}@`) : text;
  if (secrets.values.size === 0) return scrubbed;
  secrets.sorted ??= [...secrets.values].sort((a, b) => b.length - a.length);
  for (const value of secrets.sorted) {
    if (scrubbed.includes(value)) scrubbed = scrubbed.split(value).join(REDACTED);
  }
  return scrubbed;
}
