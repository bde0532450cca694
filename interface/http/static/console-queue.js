// The supervisor's queue: what each pending case asks for and why, approved or rejected with
// a reason. The API refuses a decision on one's own case; the page shows its refusal.
"use strict";

(() => {
  const { $, api, notice, busy, el, when } = window.FangxinKit;
  const views = (window.FangxinViews = window.FangxinViews || {});

  function line(label, value) {
    const row = el("div");
    row.append(el("dt", label), el("dd", value));
    return row;
  }

  function queueItem(found) {
    const item = el("li", null, { class: "card inset", testid: "queue-item" });
    item.dataset.caseId = found.case_id;
    const by = found.index_by === "visitor_id" ? "访客编号 visitor id" : "手机号 phone";
    const facts = el("dl", null, { class: "facts-grid" });
    facts.append(
      line("案件 Case", found.case_id.slice(0, 8)),
      line("发起 Opened", when(found.opened_at)),
      line("窗口 Window", `${when(found.from)} — ${when(found.to)}`),
      line("确诊者 Index", `${by} · ${found.index_persons} 人 people`),
      line("法律依据 Legal basis", found.legal_basis),
    );
    const form = el("form", null, { class: "decide", novalidate: "" });
    const label = el("label", "理由 ");
    label.append(el("span", "Reason", { class: "en" }));
    const reason = el("input", null, { name: "reason", maxlength: "500", required: "", testid: "decision-reason" });
    label.append(reason);
    const approve = el("button", "批准 Approve", { type: "submit", class: "primary", testid: "approve" });
    const reject = el("button", "驳回 Reject", { type: "button", class: "secondary danger", testid: "reject" });
    const buttons = el("div", null, { class: "row" });
    buttons.append(approve, reject);
    form.append(label, buttons);
    const decide = (yes, button) =>
      busy(button, async () => {
        const decided = await api("POST", `/v1/cases/${found.case_id}/approval`, {
          approve: yes,
          reason: reason.value.trim(),
        });
        notice(yes ? "已批准。 Approved." : "已驳回。 Rejected.");
        item.remove();
        $("queue-empty").hidden = $("queue").children.length > 0;
        return decided;
      });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      decide(true, approve);
    });
    reject.addEventListener("click", () => decide(false, reject));
    item.append(facts, form);
    return item;
  }

  async function loadQueue() {
    const answer = await api("GET", "/v1/cases?status=pending");
    $("queue").replaceChildren(...answer.cases.map(queueItem));
    $("queue-empty").hidden = answer.cases.length > 0;
  }

  $("queue-refresh").addEventListener("click", (event) => busy(event.currentTarget, loadQueue));

  views.queue = {
    async show() {
      $("supervisor-view").hidden = false;
      await loadQueue();
    },
  };
})();
