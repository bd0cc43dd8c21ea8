import { describe, expect, it } from "vitest";
import { listTables, tableRows } from "../src/index.ts";
import { databaseWith } from "./helpers.ts";

describe("browsing a database", () => {
  const database = databaseWith(
    `CREATE TABLE planets (name TEXT PRIMARY KEY, moons INTEGER);
     CREATE TABLE notes (body TEXT);
     CREATE TABLE _switchboard_enrich_jobs (id INTEGER PRIMARY KEY);
     INSERT INTO planets VALUES ('Mercury', 0), ('Venus', 0), ('Earth', 1), ('Mars', 2), ('Jupiter', 95);
     INSERT INTO notes VALUES ('a'), ('b');`,
  );

  it("lists tables with row counts, leaving out the data tools' own tables", () => {
    expect(listTables(database)).toEqual([
      { name: "notes", rowCount: 2, columns: ["body"], primaryKey: ["rowid"] },
      { name: "planets", rowCount: 5, columns: ["name", "moons"], primaryKey: ["name"] },
    ]);
    expect(listTables(database, { includeInternal: true }).map((table) => table.name)).toContain(
      "_switchboard_enrich_jobs",
    );
  });

  it("pages through rows sorted by a column or the key", () => {
    const page = tableRows(database, "planets", { limit: 2, offset: 1, sort: "moons", descending: true });
    expect(page).toMatchObject({ total: 5, offset: 1, limit: 2, sort: "moons", descending: true });
    expect(page.rows).toEqual([
      { name: "Mars", moons: 2 },
      { name: "Earth", moons: 1 },
    ]);
    expect(tableRows(database, "notes").rows).toEqual([
      { rowid: 1, body: "a" },
      { rowid: 2, body: "b" },
    ]);
    expect(() => tableRows(database, "planets", { sort: "mass" })).toThrow('Cannot sort by "mass"');
  });
});
