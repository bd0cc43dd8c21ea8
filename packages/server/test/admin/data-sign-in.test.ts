/**
 * The data pages on `switchboard serve` use the admin UI's sign-in: the session's actor, the
 * `permissions:` of the configuration (root may do everything) and the session's CSRF token.
 */
import { afterAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { dataHub, libraryDatabase } from "../data-pages-helpers.ts";
import { ORIGIN } from "./helpers.ts";

describe("data pages signed in through the admin UI", async () => {
  const hub = await dataHub({ permissions: { enrich: ["alice"] } });
  const app = createApp({ hub, databases: [libraryDatabase()] });
  afterAll(() => hub.close());

  async function signIn(actor: string): Promise<{ cookie: string; csrf: string }> {
    const { token } = await hub.logins.createLink(actor);
    const cookie =
      ((await app.request(`/-/login?token=${token}`)).headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const home = await (await app.request("/-/", { headers: { cookie } })).text();
    return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(home)?.[1] ?? "" };
  }

  const startJob = (session: { cookie: string; csrf: string } | undefined, csrf = session?.csrf) =>
    app.request("/-/enrich/library/books", {
      method: "POST",
      headers: {
        origin: ORIGIN,
        "content-type": "application/x-www-form-urlencoded",
        ...(session ? { cookie: session.cookie } : {}),
      },
      body: new URLSearchParams({
        csrf: csrf ?? "",
        prompt: "{{ title }}",
        output: "note",
        where: "position < 3",
      }),
    });

  it("lets a permitted actor start a job with the session's token, as that actor", async () => {
    const alice = await signIn("alice");
    const started = await startJob(alice);
    expect(started.status).toBe(303);
    expect(started.headers.get("location")).toMatch(/^\/-\/enrich\/library\/-\/jobs\//);
  });

  it("refuses anonymous users, actors without the permission, and a missing token", async () => {
    expect((await startJob(undefined)).status).toBe(403);
    const bob = await signIn("bob");
    expect((await startJob(bob)).status).toBe(403);
    const alice = await signIn("alice");
    expect((await startJob(alice, "forged")).status).toBe(403);
    const root = await signIn("root");
    expect((await startJob(root)).status).toBe(303);
  });
});
