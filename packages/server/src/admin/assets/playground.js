// The playground: posts the form with fetch (CSRF token in a header), reads the server-sent
// events from the response body as they arrive, and shows the answer growing, then its details.
(() => {
  const form = document.getElementById("playground");
  if (!form) return;
  const byId = (id) => document.getElementById(id);
  const models = JSON.parse(byId("playground-models").textContent);
  const purposeSelect = byId("pg-purpose");
  const modelSelect = byId("pg-model");
  const answer = byId("pg-answer");
  const problem = byId("pg-error");
  const stats = byId("pg-stats");
  const run = byId("pg-run");
  const stop = byId("pg-stop");
  let controller;

  // Only models allowed for the chosen purpose (and this actor) are offered.
  purposeSelect.addEventListener("change", () => {
    const entry = models.find((option) => option.purpose === purposeSelect.value);
    modelSelect.replaceChildren(new Option("the purpose's default", ""));
    for (const id of entry ? entry.models : []) modelSelect.append(new Option(id, id));
  });

  const show = (event, data) => {
    if (event === "chunk") answer.textContent += data.text;
    else if (event === "error") problem.textContent = `${data.code}: ${data.message}`;
    else if (event === "done") {
      byId("pg-stat-model").textContent = data.model;
      byId("pg-stat-ttft").textContent = data.ttftMs == null ? "—" : `${data.ttftMs} ms`;
      byId("pg-stat-duration").textContent = `${data.durationMs} ms`;
      byId("pg-stat-tokens").textContent = `${data.inputTokens ?? "—"} in, ${data.outputTokens ?? "—"} out`;
      byId("pg-stat-cost").textContent = data.cost ?? "no price";
      const link = document.createElement("a");
      link.href = data.logUrl;
      link.textContent = data.usageId;
      byId("pg-stat-log").replaceChildren(link);
      stats.hidden = false;
    }
  };

  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    controller = new AbortController();
    answer.textContent = "";
    problem.textContent = "";
    stats.hidden = true;
    run.disabled = true;
    stop.disabled = false;
    answer.setAttribute("aria-busy", "true");
    try {
      const body = new FormData(form);
      const response = await fetch(form.action, {
        method: "POST",
        body,
        headers: { "x-csrf-token": body.get("csrf") },
        signal: controller.signal,
      });
      if (!response.ok || !response.body) {
        problem.textContent = `The server answered ${response.status}.`;
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        let end = buffered.indexOf("\n\n");
        while (end >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          let event = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length) show(event, JSON.parse(data.join("\n")));
          end = buffered.indexOf("\n\n");
        }
      }
    } catch (error) {
      if (error.name !== "AbortError") problem.textContent = String(error.message || error);
    } finally {
      run.disabled = false;
      stop.disabled = true;
      answer.removeAttribute("aria-busy");
    }
  });
  stop.addEventListener("click", () => controller?.abort());
})();
