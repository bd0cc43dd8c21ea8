import { SwitchboardError } from "@switchboard/core";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.ts";

function tooLarge(maxBytes: number): SwitchboardError {
  return new SwitchboardError(
    "REQUEST_TOO_LARGE",
    `The request body is larger than this server accepts (${maxBytes} bytes); send less, or raise server.max_body_bytes.`,
    { maxBytes },
  );
}

/** Reads the body up to `maxBytes` without buffering more than that. */
async function readLimited(request: Request, maxBytes: number): Promise<string> {
  const length = request.headers.get("content-length");
  if (length !== null) {
    // The HTTP parser holds the body to its declared length, so the one fast read is safe.
    if (Number(length) > maxBytes) throw tooLarge(maxBytes);
    return request.text();
  }
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** Parses the JSON body into `body`: 413 over the size limit, 400 naming what is wrong with the JSON. */
export function jsonBody(maxBytes: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const text = await readLimited(c.req.raw, maxBytes);
    if (text.trim() === "") {
      throw new SwitchboardError("INVALID_INPUT", "The request body is empty; send a JSON object.", {
        param: "body",
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `The request body is not valid JSON: ${(error as Error).message}.`,
        { param: "body" },
      );
    }
    c.set("body", body);
    await next();
  };
}
