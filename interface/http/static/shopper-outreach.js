// The shopper's pages: venues' notices (on load and live), who read my data, and the venue
// region's risk level as a coloured band. Built on what shopper.js exposes, and told by its
// events (fangxin:signed-in, :notice, :checked-in, :ticket, :signed-out).
// Every text from the server goes in with textContent, never as HTML.
"use strict";

(() => {
  const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
  const S = () => window.FangxinShopper;
  const on = (name, handler) => document.addEventListener(`fangxin:${name}`, handler);

  const LEVELS = {
    low: ["低风险", "Low risk"],
    medium: ["中风险", "Medium risk"],
    high: ["高风险", "High risk"],
  };
  // What the visitor sees of each kind of read (domain/accesses.py names them in English).
  const ACTIONS = {
    "read trajectory": "查看了行程",
    "read contacts": "查看了密接名单",
    "reveal contact details": "查看了您的姓名和电话",
    export: "导出了流调数据",
    "declare exposure": "发布了风险提醒",
  };

  // -- the risk level band ----------------------------------------------------------------

  let risk = null;

  function band(element, level) {
    const names = LEVELS[level];
    if (!names) {
      element.hidden = true;
      return;
    }
    S().labelled(element, `所在地区：${names[0]}`, `This area: ${names[1]}`);
    element.dataset.level = level;
    element.hidden = false;
  }

  async function loadRisk() {
    const page = S().page;
    if (!/^[0-9]{6}$/.test(page.region || "")) return;
    try {
      const response = await fetch(`/v1/regions/${page.region}/risk`, {
        headers: { Accept: "application/json" },
        credentials: "omit",
        cache: "no-store",
      });
      if (!response.ok) return;
      const found = await response.json();
      // A check-in's own answer, if it came first, is newer.
      if (risk === null) {
        risk = found.level;
        band(byTestId("risk-band"), risk);
      }
    } catch {
      // Without the level the page still checks in; the answer will carry it.
    }
  }

  on("checked-in", (event) => {
    if (event.detail && event.detail.risk) {
      risk = event.detail.risk.level;
      band(byTestId("risk-band"), risk);
    }
  });
  on("ticket", () => {
    if (risk) band(byTestId("ticket-risk"), risk);
  });

  // -- venues' notices ------------------------------------------------------------------------

  const shownNotices = new Set();

  function noticeItem(notice) {
    const { dayFormat, shortTimeFormat } = S();
    const item = document.createElement("li");
    item.className = "notice-item";
    item.dataset.testid = "venue-notice";
    const venue = document.createElement("strong");
    venue.textContent = (notice.venue && notice.venue.name) || "—";
    const message = document.createElement("p");
    message.className = "notice-message";
    message.textContent = notice.message;
    const when = document.createElement("span");
    when.className = "notice-when";
    const start = new Date(notice.from);
    const end = new Date(notice.to);
    S().labelled(
      when,
      `致 ${dayFormat.format(start)} ${shortTimeFormat.format(start)} – ${dayFormat.format(end)} ${shortTimeFormat.format(end)} 到店的顾客`,
      "To visitors at these times",
    );
    item.append(venue, message, when);
    return item;
  }

  function addNotices(notices, live) {
    let added = 0;
    for (const notice of notices) {
      const key = `${notice.venue && notice.venue.venue_id}|${notice.sent_at}|${notice.message}`;
      if (shownNotices.has(key)) continue;
      shownNotices.add(key);
      byTestId("notice-list").prepend(noticeItem(notice));
      added += 1;
    }
    if (shownNotices.size > 0) byTestId("notices").hidden = false;
    if (live && added > 0) S().showNotice("您收到一条商户通知。 A venue sent you a notice.");
  }

  on("notice", (event) => addNotices([event.detail], true));

  // -- who read my data -------------------------------------------------------------------------

  const whenFormat = new Intl.DateTimeFormat("zh-CN", {
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });

  function fact(label, value, testid) {
    const row = document.createElement("div");
    const term = document.createElement("dt");
    S().labelled(term, label[0], label[1]);
    const detail = document.createElement("dd");
    detail.textContent = value;
    if (testid) detail.dataset.testid = testid;
    row.append(term, detail);
    return row;
  }

  function accessItem(access) {
    const item = document.createElement("li");
    item.className = "access-item";
    item.dataset.testid = "access";
    const agency = document.createElement("strong");
    agency.dataset.testid = "access-agency";
    agency.textContent = access.agency;
    const facts = document.createElement("dl");
    facts.className = "access-facts";
    const action = ACTIONS[access.action] ? `${ACTIONS[access.action]} · ${access.action}` : access.action;
    facts.append(
      fact(["操作", "What"], action, "access-action"),
      fact(["时间", "When"], whenFormat.format(new Date(access.at))),
      fact(["法律依据", "Legal basis"], access.legal_basis, "access-basis"),
    );
    item.append(agency, facts);
    return item;
  }

  async function loadAccesses() {
    const answer = await S().api("GET", "/v1/me/accesses");
    const accesses = Array.isArray(answer && answer.accesses) ? answer.accesses : [];
    // Newest first (the answer is oldest first; reads in the same second keep their order).
    const newest = accesses.slice().reverse().sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    byTestId("access-list").replaceChildren(...newest.map(accessItem));
    byTestId("no-accesses").hidden = accesses.length > 0;
    byTestId("accesses").hidden = false;
  }

  on("signed-in", async () => {
    try {
      const answer = await S().api("GET", "/v1/me/notices");
      addNotices(Array.isArray(answer && answer.notices) ? answer.notices : [], false);
      // The full record of reads belongs on the home page, not at a venue's door.
      if (S().page.mode === "home") await loadAccesses();
    } catch (error) {
      S().fail(error);
    }
  });

  on("signed-out", () => {
    byTestId("notices").hidden = true;
    byTestId("accesses").hidden = true;
    byTestId("notice-list").replaceChildren();
    shownNotices.clear();
  });

  // shopper.js runs after this script: start once it has.
  window.addEventListener("DOMContentLoaded", loadRisk);
})();
