// One case: its facts, the trajectory as a timeline, the call list with reveals, exports,
// exposures declared from a visit, and closing. Times shown in Beijing time.
"use strict";

(() => {
  const { $, api, fail, notice, onSubmit, el, when, toInput, fromInput, ApiError } = window.FangxinKit;
  const views = (window.FangxinViews = window.FangxinViews || {});
  const TZ = "Asia/Shanghai";
  const SECOND_MS = 1000;
  const AFTER_MS = 30 * 60 * 1000;
  const REASONS = {
    scan: "扫码离店 scanned out",
    payment: "结账离店 paid",
    superseded: "在别处登记 elsewhere",
    auto: "超时自动离店 auto",
    manual: "手动离店 manual",
  };
  let current = null;
  let role = null;
  let venues = new Map();
  let exposureVenue = null;

  function fact(term, value, testid) {
    const row = el("div");
    row.append(el("dt", term), el("dd", value, { testid }));
    return row;
  }

  function showFacts(found) {
    $("case-title").textContent = `案件 Case ${found.case_id.slice(0, 8)}`;
    const by = found.index_by === "visitor_id" ? "访客编号 visitor id" : "手机号 phone";
    $("case-facts").replaceChildren(
      fact("状态 Status", views.cases.STATUS[found.status] || found.status, "case-status"),
      fact("窗口 Window", `${when(found.from)} — ${when(found.to)}`),
      fact("确诊者 Index", `${by} · ${found.index_persons} 人 people`),
      fact("法律依据 Legal basis", found.legal_basis),
      fact("发起 Opened", when(found.opened_at)),
      fact("到期 Expires", when(found.expires_at)),
    );
  }

  function ruleQuery() {
    const f = $("rule-form").elements;
    return new URLSearchParams({
      min_overlap_minutes: f.min_overlap_minutes.value || "0",
      after_minutes: f.after_minutes.value || "0",
      before_minutes: f.before_minutes.value || "0",
      depth: f.depth.value,
    });
  }

  function exportLinks() {
    for (const format of ["csv", "json"]) {
      const query = ruleQuery();
      query.set("format", format);
      query.set("tz", TZ);
      query.set("details", String($("export-details").checked));
      $(`export-${format}`).href = `/v1/cases/${current.case_id}/export?${query}`;
    }
  }

  function visitItem(visit) {
    const item = el("li", null, { class: "stop", testid: "visit" });
    const venue = visit.venue;
    venues.set(venue.venue_id, venue.name);
    const region = venue.region_name ? `${venue.region_name}（${venue.region}）` : venue.region;
    item.append(
      el("p", `${when(visit.checked_in_at)} — ${visit.checked_out_at ? when(visit.checked_out_at) : "仍在场 still there"}`, {
        class: "stop-when",
      }),
      el("p", venue.name, { class: "stop-venue", testid: "visit-venue" }),
      el("p", `${venue.address} · ${region}`, { class: "stop-where" }),
    );
    if (visit.checkout_reason) item.append(el("p", REASONS[visit.checkout_reason] || visit.checkout_reason, { class: "hint" }));
    if (role === "tracer") {
      const declare = el("button", "发布风险场所 Declare exposure", { type: "button", class: "secondary", testid: "declare-here" });
      declare.addEventListener("click", () => startExposure(visit));
      item.append(declare);
    }
    return item;
  }

  // The widest window the API accepts for a visit: from its check-in (shown to the second,
  // so the next second is surely inside it) until 30 minutes after its check-out.
  function startExposure(visit) {
    exposureVenue = visit.venue;
    $("exposure-venue").textContent = `${visit.venue.name} · ${visit.venue.address}`;
    $("exposure-from").value = toInput(new Date(visit.checked_in_at).getTime() + SECOND_MS);
    const out = visit.checked_out_at ? new Date(visit.checked_out_at).getTime() + AFTER_MS : Date.now();
    $("exposure-to").value = toInput(out);
    $("exposure-form").hidden = false;
    $("exposure-advice").focus();
  }

  async function loadTrajectory() {
    const answer = await api("GET", `/v1/cases/${current.case_id}/trajectory`);
    venues = new Map();
    $("trajectory").replaceChildren(...answer.visits.map(visitItem));
    $("no-visits").hidden = answer.visits.length > 0;
    const outside = $("outside-jurisdiction");
    outside.hidden = !answer.outside_jurisdiction;
    outside.textContent = `另有 ${answer.outside_jurisdiction} 次到访在管辖区域外，未显示。 ${answer.outside_jurisdiction} visits outside the jurisdiction are not shown.`;
  }

  function overlapText(exposures) {
    const first = exposures.reduce((a, b) => (a.from < b.from ? a : b));
    const last = exposures.reduce((a, b) => (a.to > b.to ? a : b));
    return `${when(first.from)} — ${when(last.to)}`;
  }

  function revealCell(contact) {
    const cell = el("td", null, { class: "reveal" });
    const button = el("button", "显示 Reveal", { type: "button", class: "secondary", testid: "reveal" });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const found = await api("POST", `/v1/cases/${current.case_id}/contacts/${contact.visitor_id}/details`);
        cell.replaceChildren(el("span", found.name, { class: "strong", testid: "contact-name" }), el("span", found.phone, { testid: "contact-phone" }));
      } catch (error) {
        if (error instanceof ApiError && error.status === 410) {
          cell.replaceChildren(el("span", "已删除 Erased", { class: "badge", testid: "contact-erased" }));
        } else {
          button.disabled = false;
          fail(error);
        }
      }
    });
    cell.append(button);
    return cell;
  }

  function contactRow(contact) {
    const row = el("tr", null, { testid: "contact" });
    const names = [...new Set(contact.exposures.map((e) => venues.get(e.venue_id) || "轨迹外场所 another venue"))];
    const seconds = contact.exposures.reduce((sum, e) => sum + e.overlap_seconds, 0);
    row.append(
      el("td", String(contact.depth), { class: "num" }),
      el("td", names.join("、")),
      el("td", overlapText(contact.exposures)),
      el("td", String(Math.round(seconds / 60)), { class: "num" }),
      revealCell(contact),
    );
    return row;
  }

  async function loadContacts() {
    const answer = await api("GET", `/v1/cases/${current.case_id}/contacts?${ruleQuery()}`);
    $("call-rows").replaceChildren(...answer.contacts.map(contactRow));
    $("no-contacts").hidden = answer.contacts.length > 0;
    exportLinks();
  }

  async function open(caseId, who) {
    role = who;
    $("case-detail").hidden = false;
    $("exposure-form").hidden = true;
    $("error").hidden = true;
    current = await api("GET", `/v1/cases/${caseId}`);
    showFacts(current);
    const readable = current.status === "approved";
    $("case-readable").hidden = !readable;
    $("close-form").hidden = current.status === "closed" || current.status === "expired";
    if (readable) {
      await loadTrajectory();
      await loadContacts();
    }
  }

  onSubmit("rule-form", () => loadContacts());
  $("export-details").addEventListener("change", exportLinks);
  $("exposure-cancel").addEventListener("click", () => {
    $("exposure-form").hidden = true;
  });

  onSubmit("exposure-form", async (form, f) => {
    const made = await api(
      "POST",
      "/v1/exposures",
      {
        case_id: current.case_id,
        venue_id: exposureVenue.venue_id,
        from: fromInput(f.from.value),
        to: fromInput(f.to.value),
        advice: f.advice.value.trim(),
      },
      true,
    );
    form.reset();
    form.hidden = true;
    notice(`已发布，提醒了 ${made.notified} 人。 Declared: ${made.notified} people alerted.`);
  });

  onSubmit("close-form", async (form, f) => {
    await api("POST", `/v1/cases/${current.case_id}/closure`, { reason: f.reason.value.trim() });
    form.reset();
    notice("案件已结案。 Case closed.");
    await views.cases.reload(current.case_id);
  });

  views.caseDetail = { open: (caseId, who) => open(caseId, who).catch(fail) };
})();
