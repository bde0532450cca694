// The supervisor's risk levels: pick a region, set low, medium or high with a note, then see
// the level in force and the levels set for the region, newest first. The API refuses a
// region outside the agency's jurisdiction; the page shows its refusal.
"use strict";

(() => {
  const { $, ApiError, api, fail, notice, onSubmit, regionPicker, el, when } = window.FangxinKit;
  const views = (window.FangxinViews = window.FangxinViews || {});
  const LEVELS = { low: "低 Low", medium: "中 Medium", high: "高 High" };

  const resetRegions = regionPicker($("risk-province"), $("risk-city"), $("risk-county"));

  // The deepest region chosen: a county, else its city, else the province.
  function chosen(f) {
    return f.county.value || f.city.value || f.province.value;
  }

  function historyRow(entry) {
    const row = el("tr", null, { testid: "risk-row" });
    row.append(
      el("td", when(entry.at)),
      el("td", LEVELS[entry.level] || entry.level, { class: `level-${entry.level}` }),
      el("td", entry.note || "—"),
      el("td", entry.by.slice(0, 8), { title: entry.by }),
    );
    return row;
  }

  async function showRegion(region) {
    const [current, past] = await Promise.all([
      api("GET", `/v1/regions/${region}/risk`),
      // Outside the jurisdiction the level in force still shows; its history does not.
      api("GET", `/v1/regions/${region}/risk/history`).catch((error) => {
        if (error instanceof ApiError && error.status === 403) return null;
        throw error;
      }),
    ]);
    $("risk-region-name").textContent = `${current.name} ${current.region}`;
    const inherited =
      current.set_for && current.set_for !== current.region ? `（沿用 ${current.set_for} inherited）` : "";
    const since = current.since ? ` · 自 since ${when(current.since)}` : "";
    $("risk-current").textContent = `当前等级 Level in force: ${LEVELS[current.level]}${inherited}${since}`;
    $("risk-current").dataset.level = current.level;
    const history = past ? past.history : [];
    $("risk-rows").replaceChildren(...history.map(historyRow));
    $("risk-history").hidden = !past;
    $("risk-no-history").hidden = history.length > 0 || !past;
    $("risk-outside").hidden = Boolean(past);
    $("risk-current-card").hidden = false;
  }

  // Choosing a region shows its level and history before anything is set.
  for (const id of ["risk-province", "risk-city", "risk-county"]) {
    $(id).addEventListener("change", () => {
      const region = chosen($("risk-form").elements);
      $("risk-current-card").hidden = true;
      if (region) showRegion(region).catch(fail);
    });
  }

  onSubmit("risk-form", async (form, f) => {
    const region = chosen(f);
    if (!region) throw new ApiError(400, "请选择区域。 Choose a region.");
    await api("PUT", `/v1/regions/${region}/risk`, { level: f.level.value, note: f.note.value.trim() });
    f.note.value = "";
    await showRegion(region);
    notice("已设置。 Level set.");
  });

  views.risk = {
    async show() {
      $("risk-view").hidden = false;
      $("risk-current-card").hidden = true;
      await resetRegions();
    },
  };
})();
