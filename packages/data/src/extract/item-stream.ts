/**
 * An incremental JSON reader for extraction replies. It follows the structure of the text as it
 * streams in and hands over each element of the top-level object's `items` array (or of a
 * top-level array) the moment its closing brace arrives, without waiting for the whole reply.
 * Only the text of the item being read is kept, so memory stays small however long the reply.
 */

interface Frame {
  kind: "object" | "array";
  /** For objects: whether the next string is a key. */
  expectKey: boolean;
  /** For the top-level object: the key whose value is being read. */
  key: string | undefined;
}

export class ItemStreamParser {
  readonly #stack: Frame[] = [];
  #inString = false;
  #escaped = false;
  /** Collecting a key of the top-level object (raw, escapes undecoded). */
  #keyText: string | undefined;
  /** Text of the item being read, from earlier chunks. */
  #itemText = "";
  /** Stack depth at which the current item's object was opened; 0 when not inside an item. */
  #itemDepth = 0;
  #started = false;
  #closed = false;

  /** Feeds the next chunk; returns the items completed by it, in order. */
  push(chunk: string): unknown[] {
    const items: unknown[] = [];
    let itemFrom = this.#itemDepth > 0 ? 0 : -1;
    for (let index = 0; index < chunk.length; index++) {
      const char = chunk[index] as string;
      if (this.#inString) {
        if (this.#escaped) {
          this.#escaped = false;
          if (this.#keyText !== undefined) this.#keyText += char;
        } else if (char === "\\") {
          this.#escaped = true;
          if (this.#keyText !== undefined) this.#keyText += char;
        } else if (char === '"') {
          this.#inString = false;
          if (this.#keyText !== undefined) {
            const top = this.#stack[0] as Frame;
            top.key = JSON.parse(`"${this.#keyText}"`) as string;
            this.#keyText = undefined;
          }
        } else if (this.#keyText !== undefined) {
          this.#keyText += char;
        }
        continue;
      }
      const top = this.#stack.at(-1);
      switch (char) {
        case '"':
          this.#inString = true;
          if (this.#stack.length === 1 && top?.kind === "object" && top.expectKey) this.#keyText = "";
          break;
        case "{":
        case "[": {
          if (this.#closed) break;
          if (this.#itemDepth === 0 && char === "{" && this.#isItemsArray()) {
            this.#itemDepth = this.#stack.length + 1;
            itemFrom = index;
          }
          this.#stack.push({
            kind: char === "{" ? "object" : "array",
            expectKey: char === "{",
            key: undefined,
          });
          this.#started = true;
          break;
        }
        case "}":
        case "]":
          if (this.#stack.length === 0) break;
          if (this.#itemDepth > 0 && this.#stack.length === this.#itemDepth) {
            const text = this.#itemText + chunk.slice(itemFrom, index + 1);
            items.push(JSON.parse(text));
            this.#itemText = "";
            this.#itemDepth = 0;
            itemFrom = -1;
          }
          this.#stack.pop();
          if (this.#stack.length === 0) this.#closed = true;
          break;
        case ":":
          if (top?.kind === "object") top.expectKey = false;
          break;
        case ",":
          if (top?.kind === "object") top.expectKey = true;
          break;
        default:
          break;
      }
    }
    if (this.#itemDepth > 0 && itemFrom >= 0) this.#itemText += chunk.slice(itemFrom);
    return items;
  }

  /** Whether the reply held one complete JSON document. */
  get complete(): boolean {
    return this.#started && this.#closed;
  }

  #isItemsArray(): boolean {
    const [outer, inner] = this.#stack;
    if (this.#stack.length === 1) return outer?.kind === "array";
    return (
      this.#stack.length === 2 && outer?.kind === "object" && outer.key === "items" && inner?.kind === "array"
    );
  }
}
