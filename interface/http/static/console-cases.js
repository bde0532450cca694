// The console's case list and the form that opens a case (tracers; supervisors read the list).
"use strict";

(() => {
  const { $, api, notice, onSubmit, el, when, toInput, fromInput } = window.FangxinKit;
  const views = (window.FangxinViews = window.FangxinViews || {});
  const DAY_MS = 24 * 3600 * 1000;
  const DEFAULT_DAYS = 14;
  const STATUS = {
    pending: "待审批 Pending",
    approved: "已批准 Approved",
    rejected: "已驳回 Rejected",
    closed: "已结案 Closed",
    expired: "已过期 Expired",
  };
  let role = null;
  let currentId = null;

  async function loadCases(selectId) {
    const status = $("case-status-filter").value;
    const answer = await api("GET", `/v1/cases${status ? `?status=${status}` : ""}`);
    const cases = answer.cases || [];
    $("case-list").replaceChildren(
      ...cases.map((found) => {
        const button = el("button", null, { type: "button", class: "venue-pick", testid: "case-pick" });
        button.dataset.caseId = found.case_id;
        button.append(
          el("span", `${when(found.opened_at)}`, { class: "pick-title" }),
          el("span", STATUS[found.status] || found.status, { class: `badge ${found.status}` }),
        );
        button.setAttribute("aria-current", String(found.case_id === currentId));
        button.addEventListener("click", () => openCase(found.case_id));
        const item = el("li");
        item.append(button);
        return item;
      }),
    );
    $("no-cases").hidden = cases.length > 0;
    if (selectId) await openCase(selectId);
  }

  async function openCase(caseId) {
    currentId = caseId;
    for (const button of document.querySelectorAll('[data-testid="case-pick"]')) {
      button.setAttribute("aria-current", String(button.dataset.caseId === caseId));
    }
    $("case-form-card").hidden = true;
    await views.caseDetail.open(caseId, role);
  }

  function showForm() {
    $("case-detail").hidden = true;
    $("case-form-card").hidden = false;
    const now = Date.now();
    $("case-to").value = toInput(now);
    $("case-from").value = toInput(now - DEFAULT_DAYS * DAY_MS);
    $("case-index").focus();
  }

  $("new-case").addEventListener("click", showForm);
  $("case-cancel").addEventListener("click", () => {
    $("case-form-card").hidden = true;
  });
  $("case-status-filter").addEventListener("change", () => loadCases().catch(window.FangxinKit.fail));

  onSubmit("case-form", async (form, f) => {
    const value = f.index.value.trim();
    const index = f.index_by.value === "phone" ? { phone: value } : { visitor_id: value };
    const made = await api(
      "POST",
      "/v1/cases",
      { index, from: fromInput(f.from.value), to: fromInput(f.to.value), legal_basis: f.legal_basis.value.trim() },
      true,
    );
    form.reset();
    notice("案件已提交，等待审批。 Case opened; it awaits a supervisor's approval.");
    await loadCases(made.case_id);
  });

  views.cases = {
    async show(session) {
      role = session.role;
      currentId = null;
      $("new-case").hidden = role !== "tracer";
      $("tracer-view").hidden = false;
      $("case-detail").hidden = true;
      $("case-form-card").hidden = true;
      await loadCases();
    },
    reload: (caseId) => loadCases(caseId),
    STATUS,
  };
})();
