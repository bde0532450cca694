// The auditor's view: the trail with filters, the hash chain's verification, and checkpoints
// saved outside the system and checked later.
"use strict";

(() => {
  const { $, api, busy, onSubmit, el, when, fromInput } = window.FangxinKit;
  const views = (window.FangxinViews = window.FangxinViews || {});
  const REASONS = {
    "entries-missing": "记录缺失 entries are missing",
    "chain-broken": "记录被改动 an entry was altered",
    rewritten: "记录被重写 entries were rewritten",
  };
  let entries = [];

  function result(id, ok, text) {
    const box = $(id);
    box.textContent = text;
    box.dataset.valid = String(ok);
    box.className = ok ? "result ok" : "result bad";
    box.hidden = false;
  }

  function actions() {
    const select = $("filter-action");
    const chosen = select.value;
    const names = [...new Set(entries.map((e) => e.action))].sort();
    const all = el("option", "全部 All", { value: "" });
    select.replaceChildren(all, ...names.map((name) => el("option", name, { value: name })));
    select.value = names.includes(chosen) ? chosen : "";
  }

  function render() {
    const f = $("audit-filter").elements;
    const actor = f.actor.value.trim().toLowerCase();
    const caseId = f.case.value.trim().toLowerCase();
    const action = f.action.value;
    const shown = entries.filter(
      (e) =>
        (!actor || e.actor.toLowerCase().includes(actor)) &&
        (!caseId || (e.case_id || "").includes(caseId)) &&
        (!action || e.action === action),
    );
    $("audit-rows").replaceChildren(
      ...shown
        .slice()
        .reverse()
        .map((e) => {
          const row = el("tr", null, { testid: "audit-row" });
          row.dataset.action = e.action;
          row.append(
            el("td", String(e.position), { class: "num" }),
            el("td", when(e.at)),
            el("td", e.actor, { class: "mono" }),
            el("td", e.action),
            el("td", e.case_id ? e.case_id.slice(0, 8) : "—", { class: "mono nowrap" }),
            el("td", e.subject || "—", { class: "mono" }),
          );
          return row;
        }),
    );
    $("audit-count").textContent = `显示 ${shown.length} / ${entries.length} 条。 Showing ${shown.length} of ${entries.length} entries, newest first.`;
  }

  async function loadTrail() {
    const f = $("audit-filter").elements;
    const query = new URLSearchParams();
    if (f.from.value) query.set("from", fromInput(f.from.value));
    if (f.to.value) {
      const end = new Date(fromInput(f.to.value));
      end.setUTCDate(end.getUTCDate() + 1);
      query.set("to", end.toISOString());
    }
    const answer = await api("GET", `/v1/audit?${query}`);
    entries = answer.entries;
    actions();
    render();
  }

  onSubmit("audit-filter", loadTrail);
  $("filter-action").addEventListener("change", render);

  $("verify").addEventListener("click", (event) =>
    busy(event.currentTarget, async () => {
      const found = await api("GET", "/v1/audit/verification");
      result(
        "verify-result",
        found.valid,
        found.valid
          ? `完好：${found.entries} 条记录。 Intact: ${found.entries} entries.`
          : `已损坏，自第 ${found.first_bad_position} 条起。 Broken from entry ${found.first_bad_position}.`,
      );
    }),
  );

  let download = null;
  $("checkpoint-save").addEventListener("click", (event) =>
    busy(event.currentTarget, async () => {
      const signed = await api("GET", "/v1/audit/checkpoint");
      $("checkpoint-value").value = signed.checkpoint;
      if (download) URL.revokeObjectURL(download);
      download = URL.createObjectURL(new Blob([JSON.stringify(signed, null, 2)], { type: "application/json" }));
      $("checkpoint-download").href = download;
      $("checkpoint-download").hidden = false;
      result("checkpoint-result", true, `检查点：${signed.entries} 条，${when(signed.issued_at)}。请下载保存。 Checkpoint of ${signed.entries} entries; download and keep it.`);
    }),
  );

  onSubmit("checkpoint-form", async (form, f) => {
    const query = new URLSearchParams({ checkpoint: f.checkpoint.value.trim() });
    const found = await api("GET", `/v1/audit/verification?${query}`);
    const against = found.checkpoint;
    const ok = found.valid && against && against.valid;
    result(
      "checkpoint-result",
      Boolean(ok),
      ok
        ? `与检查点一致：前 ${against.entries} 条未被改动，现共 ${found.entries} 条。 Matches: the first ${against.entries} entries are unchanged; ${found.entries} now.`
        : `与检查点不符：${(against && REASONS[against.reason]) || "哈希链已损坏 the chain is broken"}。 Does not match.`,
    );
  });

  views.audit = {
    async show() {
      $("auditor-view").hidden = false;
      await loadTrail();
    },
  };
})();
