// Draws the usage page's two charts (cost and tokens per bucket, one line per series) with uPlot.
// The numbers come from the page itself (#usage-data); the same numbers are in the tables below.
(() => {
  const data = JSON.parse(document.getElementById("usage-data").textContent);
  const colors = ["#1f5fbf", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#0a7ea4", "#59636e"];
  const draw = (id, pick, format) => {
    const element = document.getElementById(id);
    if (!element || typeof uPlot === "undefined") return;
    const series = [{ label: "Time (UTC)" }].concat(
      data.series.map((entry, index) => ({
        label: entry.label,
        stroke: colors[index % colors.length],
        width: 2,
        points: { show: data.xs.length < 60 },
        value: (_plot, value) => (value == null ? "—" : format(value)),
      })),
    );
    const columns = [data.xs].concat(data.series.map(pick));
    // With no usage at all there is still one flat series, so the chart shows an empty range.
    if (columns.length === 1) {
      series.push({ label: "none", stroke: colors[6] });
      columns.push(data.xs.map(() => 0));
    }
    const plot = new uPlot(
      {
        width: Math.max(320, Math.min(element.clientWidth || 900, 1100)),
        height: 240,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        series,
        axes: [{}, { values: (_plot, ticks) => ticks.map(format), size: 70 }],
      },
      columns,
      element,
    );
    // Kept on the element so a test (or a curious operator) can read what was drawn.
    element._u = plot;
  };
  draw(
    "usage-cost-chart",
    (entry) => entry.cost,
    (value) => `$${value.toFixed(value < 1 ? 4 : 2)}`,
  );
  draw(
    "usage-tokens-chart",
    (entry) => entry.tokens,
    (value) => value.toLocaleString("en-US"),
  );
})();
