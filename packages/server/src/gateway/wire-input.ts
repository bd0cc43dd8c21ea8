/** Small readers shared by the wire parsers: each failure is a 400 naming the field at fault. */
import { SwitchboardError } from "@switchboard/core";
import type { ChatAttachment } from "./chat.ts";

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function invalid(param: string, message: string): SwitchboardError {
  return new SwitchboardError("INVALID_INPUT", `${param}: ${message}`, { param });
}

export function requireRecord(value: unknown, param: string): Record<string, unknown> {
  if (!isRecord(value)) throw invalid(param, "expected an object.");
  return value;
}

export function requireString(value: unknown, param: string): string {
  if (typeof value !== "string") throw invalid(param, "expected a string.");
  return value;
}

export function requireArray(value: unknown, param: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(param, "expected an array.");
  return value;
}

export function optionalBoolean(value: unknown, param: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw invalid(param, "expected true or false.");
  return value;
}

export function positiveInteger(value: unknown, param: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw invalid(param, "expected a positive integer.");
  }
  return value;
}

/** `data:<type>[;base64],<data>` as inline bytes; anything else stays a URL the operator may allow. */
export function attachmentFromUrl(url: string, param: string, type?: string): ChatAttachment {
  if (!url.startsWith("data:")) {
    if (!/^https?:\/\//i.test(url)) throw invalid(param, "expected an http(s) or data: URL.");
    return type === undefined ? { url } : { url, type };
  }
  const comma = url.indexOf(",");
  if (comma < 0) throw invalid(param, "a data: URL needs a comma before its data.");
  const meta = url.slice(5, comma).split(";");
  const data = url.slice(comma + 1);
  const base64 = meta.includes("base64");
  const mediaType = type ?? (meta[0] || "text/plain");
  const content = base64 ? Buffer.from(data, "base64") : Buffer.from(decodeURIComponent(data), "utf8");
  return { content: new Uint8Array(content.buffer, content.byteOffset, content.byteLength), type: mediaType };
}

export function base64Attachment(data: unknown, mediaType: unknown, param: string): ChatAttachment {
  const text = requireString(data, `${param}.data`);
  const type = requireString(mediaType, `${param}.media_type`);
  const content = Buffer.from(text, "base64");
  return { content: new Uint8Array(content.buffer, content.byteOffset, content.byteLength), type };
}

/** Tool call arguments: a JSON object (OpenAI sends it as a string, Anthropic as an object). */
export function toolArguments(value: unknown, param: string): Record<string, unknown> {
  if (isRecord(value)) return value;
  if (typeof value === "string") {
    if (value.trim() === "") return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw invalid(param, "expected a JSON object in a string.");
    }
    if (isRecord(parsed)) return parsed;
  }
  throw invalid(param, "expected a JSON object.");
}
