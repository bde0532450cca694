// The console's statistics charts, drawn with uPlot (npm, pinned, served by the app).
// Suppressed buckets (fewer than 5 visitors) have no figures: they are drawn as grey bands.
"use strict";

(() => {
  const charts = new Map();
  const SUPPRESSED_FILL = "rgba(92, 102, 117, 0.18)";

  function shadeSuppressed(flags) {
    return (u) => {
      const { ctx } = u;
      const xs = u.data[0];
      const step = 2 * halfStep(xs);
      ctx.save();
      ctx.fillStyle = SUPPRESSED_FILL;
      flags.forEach((suppressed, i) => {
        if (!suppressed) return;
        const left = u.valToPos(xs[i] - step / 2, "x", true);
        const right = u.valToPos(xs[i] + step / 2, "x", true);
        ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
      });
      ctx.restore();
    };
  }

  function draw(target, title, series, data, flags) {
    const old = charts.get(target);
    if (old) old.destroy();
    const width = Math.max(280, target.clientWidth || 600);
    const chart = new window.uPlot(
      {
        title,
        width,
        height: 220,
        series: [{}, ...series],
        axes: [{}, { size: 50 }],
        scales: {
          x: { time: true, range: () => [data[0][0] - halfStep(data[0]), data[0][data[0].length - 1] + halfStep(data[0])] },
          // Counts from zero; an empty chart still shows a scale, not a point of nothing.
          y: { range: (_u, _low, high) => [0, Math.max(5, Math.ceil((high || 0) * 1.1))] },
        },
        hooks: { drawClear: [shadeSuppressed(flags)] },
      },
      data,
      target,
    );
    charts.set(target, chart);
  }

  let bucketSeconds = 3600;

  function halfStep(xs) {
    return xs.length > 1 ? (xs[1] - xs[0]) / 2 : bucketSeconds / 2;
  }

  function toMinutes(seconds) {
    return seconds === null || seconds === undefined ? null : Math.round(seconds / 6) / 10;
  }

  window.FangxinChart = {
    draw(visitsTarget, dwellTarget, buckets, seconds) {
      bucketSeconds = seconds || 3600;
      const xs = buckets.map((b) => Date.parse(b.start) / 1000);
      const flags = buckets.map((b) => Boolean(b.suppressed));
      const pick = (key, f = (v) => v) =>
        buckets.map((b) => (b.suppressed || b[key] === undefined ? null : f(b[key])));
      draw(
        visitsTarget,
        "入店人次与访客 · Check-ins and visitors (grey: suppressed)",
        [
          { label: "入店 Check-ins", stroke: "#0a5a45", width: 2, points: { show: true } },
          { label: "访客 Visitors", stroke: "#16478f", width: 2, dash: [6, 4], points: { show: true } },
        ],
        [xs, pick("check_ins"), pick("unique_visitors")],
        flags,
      );
      draw(
        dwellTarget,
        "停留时长（分钟）· Stay in minutes",
        [
          { label: "中位 Median", stroke: "#0a5a45", width: 2, points: { show: true } },
          { label: "P90", stroke: "#b3261e", width: 2, dash: [6, 4], points: { show: true } },
        ],
        [xs, pick("median_dwell_seconds", toMinutes), pick("p90_dwell_seconds", toMinutes)],
        flags,
      );
      visitsTarget.dataset.drawn = String(buckets.length);
    },
  };
})();
