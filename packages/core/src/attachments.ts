import { statSync } from "node:fs";
import { extname } from "node:path";
import { SwitchboardError } from "./errors.ts";
import type { Attachment, AttachmentInput } from "./types.ts";

const TYPES_BY_EXTENSION: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".pdf": "application/pdf",
  ".mp3": "audio/mpeg",
  ".wav": "audio/wav",
  ".txt": "text/plain",
};

/** Recognises the common formats by their first bytes, for attachments given as raw bytes. */
function sniffType(bytes: Uint8Array): string | undefined {
  const starts = (...prefix: number[]) => prefix.every((byte, i) => bytes[i] === byte);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return "image/png";
  if (starts(0xff, 0xd8, 0xff)) return "image/jpeg";
  if (starts(0x47, 0x49, 0x46, 0x38)) return "image/gif";
  if (starts(0x25, 0x50, 0x44, 0x46)) return "application/pdf";
  if (starts(0x52, 0x49, 0x46, 0x46) && bytes[8] === 0x57 && bytes[9] === 0x45) return "image/webp";
  return undefined;
}

function typeFromName(name: string): string | undefined {
  const withoutQuery = name.split(/[?#]/)[0] ?? name;
  return TYPES_BY_EXTENSION[extname(withoutQuery).toLowerCase()];
}

/** Where a prompt comes from: one from outside may not make Switchboard read its own files. */
export interface AttachmentTrust {
  untrusted: boolean;
  /** URL attachments from an untrusted prompt are fetched by the provider: only when allowed. */
  allowUrls: boolean;
}

const TRUSTED: AttachmentTrust = { untrusted: false, allowUrls: true };

/**
 * Validates attachments against what the model accepts and settles each one's MIME type. An
 * untrusted prompt's `{path}` (and, unless allowed, `{url}`) attachments are refused before any
 * file is looked at.
 */
export function normalizeAttachments(
  inputs: readonly AttachmentInput[],
  modelId: string,
  accepted: readonly string[],
  trust: AttachmentTrust = TRUSTED,
  where = "",
): Attachment[] {
  if (inputs.length === 0) return [];
  if (trust.untrusted) {
    for (const [index, input] of inputs.entries()) refuseUntrusted(input, index, trust, where);
  }
  if (accepted.length === 0) {
    throw new SwitchboardError("UNSUPPORTED", `Model ${modelId} does not accept attachments.`, {
      model: modelId,
    });
  }
  return inputs.map((input, index) => {
    let attachment: Attachment;
    if (typeof input !== "object" || input === null) {
      throw new SwitchboardError(
        "INVALID_ATTACHMENT",
        `${where}Attachment ${index + 1}: give {path}, {url} or {content} with an optional type.`,
      );
    }
    if ("path" in input) {
      try {
        if (!statSync(input.path).isFile()) throw new Error("not a file");
      } catch {
        throw new SwitchboardError(
          "INVALID_ATTACHMENT",
          `${where}Attachment ${index + 1}: no file at ${input.path}.`,
          {
            path: input.path,
          },
        );
      }
      attachment = { type: input.type ?? typeFromName(input.path) ?? "", path: input.path };
    } else if ("url" in input) {
      attachment = { type: input.type ?? typeFromName(input.url) ?? "", url: input.url };
    } else {
      attachment = { type: input.type ?? sniffType(input.content) ?? "", content: input.content };
    }
    if (!attachment.type) {
      throw new SwitchboardError(
        "INVALID_ATTACHMENT",
        `${where}Attachment ${index + 1}: cannot tell its type; give its MIME type explicitly (one of ${accepted.join(", ")}).`,
      );
    }
    if (!accepted.includes(attachment.type)) {
      throw new SwitchboardError(
        "UNSUPPORTED",
        `Model ${modelId} does not accept attachments of type ${attachment.type}, only ${accepted.join(", ")}.`,
        { model: modelId, type: attachment.type },
      );
    }
    return attachment;
  });
}

function refuseUntrusted(input: AttachmentInput, index: number, trust: AttachmentTrust, where: string): void {
  if (typeof input !== "object" || input === null) return;
  if ("path" in input) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `${where}Attachment ${index + 1} names a file path, which a prompt from outside may not do: send the file's content instead.`,
      { attachment: index + 1 },
    );
  }
  if ("url" in input && !trust.allowUrls) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `${where}Attachment ${index + 1} is a URL, which this server does not fetch for prompts from outside: send the content instead (the operator can allow URL attachments).`,
      { attachment: index + 1 },
    );
  }
}
