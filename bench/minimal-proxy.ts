/**
 * The floor under any Node gateway on this machine: a `node:http` server that forwards each POST
 * body to the upstream with `fetch` and streams the answer back as it arrives — no parsing, no
 * auth, no governance. bench:gateway runs it in its own process beside `switchboard serve`, so the
 * cost of the extra hop (two more sockets, two more process wake-ups) is measured, not guessed.
 *
 *   node bench/minimal-proxy.ts UPSTREAM_BASE_URL   prints its own base URL (…/v1) on stdout
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";

function serveProxy(upstream: string): Promise<string> {
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    try {
      const answer = await fetch(`${upstream}${(request.url ?? "/").replace(/^\/v1/, "")}`, {
        method: request.method ?? "POST",
        headers: { "content-type": "application/json" },
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
      });
      response.writeHead(answer.status, {
        "content-type": answer.headers.get("content-type") ?? "application/json",
      });
      if (answer.body)
        for await (const bytes of answer.body as AsyncIterable<Uint8Array>) response.write(bytes);
      response.end();
    } catch (error) {
      response.writeHead(502).end(String(error));
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`);
    });
  });
}

export interface MinimalProxy {
  /** Base URL, ending in /v1. */
  url: string;
  process: ChildProcess;
  close(): Promise<void>;
}

/** Runs the proxy in a child process in front of `upstream` (a base URL ending in /v1). */
export function spawnMinimalProxy(upstream: string): Promise<MinimalProxy> {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, upstream], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`minimal proxy exited with ${code} before listening`)));
    // Never outlive the benchmark, also when it fails.
    const killChild = () => child.kill();
    process.once("exit", killChild);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", (url) => {
      child.removeAllListeners("exit");
      child.once("exit", () => process.off("exit", killChild));
      resolve({
        url,
        process: child,
        close: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
      });
    });
  });
}

if (import.meta.main) {
  const upstream = process.argv[2];
  if (!upstream) throw new Error("usage: node bench/minimal-proxy.ts UPSTREAM_BASE_URL");
  process.stdout.write(`${await serveProxy(upstream)}\n`);
}
