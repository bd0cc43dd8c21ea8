/** `-o KEY VALUE` takes two words, which commander cannot express: they are joined before parsing. */
export const OPTION_SEPARATOR = "\u0000";

/** Rewrites `-o KEY VALUE` into `-o KEY<separator>VALUE` so commander sees one value. */
export function joinOptionPairs(argv: readonly string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index] as string;
    if ((word === "-o" || word === "--option") && index + 2 < argv.length) {
      joined.push(word, `${argv[index + 1]}${OPTION_SEPARATOR}${argv[index + 2]}`);
      index += 2;
    } else {
      joined.push(word);
    }
  }
  return joined;
}
