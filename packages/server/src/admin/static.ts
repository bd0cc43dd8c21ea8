/**
 * The admin UI's static files: its stylesheet and two small scripts, and uPlot (the chart library,
 * from npm) — all served by the server itself under `/-/static/`, never from a CDN. Each URL
 * carries a hash of the content, so browsers may cache it for a year. Files are read on first use.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Hono } from "hono";

interface Asset {
  path: string;
  body: Buffer;
  type: string;
}

const require = createRequire(import.meta.url);

/** Name → where the file is. uPlot is resolved through Node, wherever npm installed it. */
const SOURCES: Record<string, () => string> = {
  "admin.css": () => fileURLToPath(new URL("./assets/admin.css", import.meta.url)),
  "admin.js": () => fileURLToPath(new URL("./assets/admin.js", import.meta.url)),
  "usage.js": () => fileURLToPath(new URL("./assets/usage.js", import.meta.url)),
  "playground.js": () => fileURLToPath(new URL("./assets/playground.js", import.meta.url)),
  "uplot.js": () => require.resolve("uplot/dist/uPlot.iife.min.js"),
  "uplot.css": () => require.resolve("uplot/dist/uPlot.min.css"),
};

let assets: Map<string, Asset> | undefined;

function load(): Map<string, Asset> {
  if (assets) return assets;
  const loaded = new Map<string, Asset>();
  for (const [name, locate] of Object.entries(SOURCES)) {
    const body = readFileSync(locate());
    const hash = createHash("sha256").update(body).digest("hex").slice(0, 10);
    const dot = name.lastIndexOf(".");
    const extension = name.slice(dot + 1);
    loaded.set(name, {
      path: `/-/static/${name.slice(0, dot)}-${hash}.${extension}`,
      body,
      type: extension === "css" ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8",
    });
  }
  assets = loaded;
  return loaded;
}

/** The URL of a named asset (`admin.css`, `uplot.js`…). */
export function assetPath(name: string): string {
  const asset = load().get(name);
  if (!asset) throw new Error(`No admin asset named ${name}`);
  return asset.path;
}

/** Serves the assets; mounted at `/-/static`. */
export function staticRoutes(): Hono {
  const routes = new Hono();
  routes.get("/:file", (c) => {
    const path = `/-/static/${c.req.param("file")}`;
    for (const asset of load().values()) {
      if (asset.path === path) {
        return c.body(new Uint8Array(asset.body), 200, {
          "content-type": asset.type,
          "cache-control": "public, max-age=31536000, immutable",
        });
      }
    }
    return c.text("Not found", 404);
  });
  return routes;
}
