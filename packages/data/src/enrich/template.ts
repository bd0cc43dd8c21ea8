/**
 * Prompt templates for enrichments: `{{ column }}` (or `{{column}}`) takes the row's value.
 */
import { SwitchboardError } from "@switchboard/core";
import { valueAsText } from "../sqlite.ts";

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** The column names a template refers to, in order of first use. */
export function templateColumns(template: string): string[] {
  const names: string[] = [];
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1] as string;
    if (!names.includes(name)) names.push(name);
  }
  return names;
}

/** Fails before any work when a template names a column the table does not have. */
export function checkTemplateColumns(
  templates: Record<string, string | undefined>,
  table: string,
  columns: readonly string[],
): string[] {
  const used: string[] = [];
  for (const [what, template] of Object.entries(templates)) {
    if (template === undefined) continue;
    for (const name of templateColumns(template)) {
      if (name === "") {
        throw new SwitchboardError(
          "INVALID_INPUT",
          `The ${what} has an empty placeholder {{ }}; name a column.`,
          {
            table,
          },
        );
      }
      if (!columns.includes(name)) {
        throw new SwitchboardError(
          "INVALID_INPUT",
          `The ${what} uses {{ ${name} }}, but table "${table}" has no column "${name}"; columns: ${columns.join(", ")}.`,
          { table, column: name },
        );
      }
      if (!used.includes(name)) used.push(name);
    }
  }
  return used;
}

/**
 * Fills a template from a row. NULL and the number 0 become empty strings, as enrichment templates
 * have always rendered them (a prompt reads "no value" the same way either way); any other value is
 * written as it is.
 */
export function fillTemplate(template: string, row: Readonly<Record<string, unknown>>): string {
  return template.replace(PLACEHOLDER, (_match, name: string) => {
    const value = row[name];
    return value === 0 || value === 0n ? "" : valueAsText(value);
  });
}
