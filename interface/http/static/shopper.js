// The shopper's phone page: home (/), check in (/c/{code}) or out (/o/{code}); registering
// on an entry poster's page checks in with the same tap.
// Every text from the server goes in with textContent, never as HTML.
"use strict";

(() => {
  const TOKEN = "fangxin.token";
  // Dependents' names stay on the visitor's own phone only, to offer them at check-in.
  const DEPENDENTS = "fangxin.dependents";
  const MAX_VISITS_SHOWN = 10;

  const app = document.getElementById("app");
  const page = JSON.parse(app.dataset.page || "{}");
  const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

  const ui = {
    notice: byTestId("notice"),
    error: byTestId("error"),
    errorTitle: byTestId("error-title"),
    errorDetail: byTestId("error-detail"),
    register: byTestId("register"),
    registerForm: byTestId("register-form"),
    registerSubmit: byTestId("register-submit"),
    checkin: byTestId("checkin"),
    checkinButton: byTestId("checkin-button"),
    party: byTestId("party"),
    partyList: document.getElementById("party-list"),
    checkout: byTestId("checkout"),
    checkoutButton: byTestId("checkout-button"),
    ticket: byTestId("ticket"),
    ticketTitle: byTestId("ticket-title"),
    venueName: byTestId("venue-name"),
    ticketTimeLabel: byTestId("ticket-time-label"),
    ticketTime: byTestId("ticket-time"),
    dwellRow: document.getElementById("dwell-row"),
    dwell: byTestId("dwell"),
    liveDate: byTestId("live-date"),
    liveClock: byTestId("live-clock"),
    visits: byTestId("visits"),
    visitList: byTestId("visit-list"),
    noVisits: byTestId("no-visits"),
    erase: byTestId("erase-link"),
    banner: byTestId("venue-banner"),
    bannerLabel: byTestId("banner-label"),
    bannerVenue: byTestId("banner-venue"),
    bannerRegion: byTestId("banner-region"),
    homeIntro: byTestId("home-intro"),
    registerZh: byTestId("register-submit-zh"),
    registerEn: byTestId("register-submit-en"),
    leave: byTestId("leave-button"),
    exposures: byTestId("exposures"),
    exposureList: byTestId("exposure-list"),
  };

  const timeFormat = new Intl.DateTimeFormat("zh-CN", {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  const shortTimeFormat = new Intl.DateTimeFormat("zh-CN", {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  const dateFormat = new Intl.DateTimeFormat("zh-CN", {
    year: "numeric",
    month: "long",
    day: "numeric",
    weekday: "short",
  });
  const dayFormat = new Intl.DateTimeFormat("zh-CN", { month: "numeric", day: "numeric" });

  const REASONS = {
    scan: ["扫码离店", "Scanned out"],
    payment: ["结账离店", "Paid at the till"],
    superseded: ["在别处登记", "Checked in elsewhere"],
    auto: ["超时自动离店", "Closed automatically"],
    manual: ["手动离店", "Checked out by you"],
  };

  // What a refusal means, in Chinese first; the API's own English detail is shown under it.
  const KINDS = {
    "invalid-venue-code": "二维码无效，请扫描店内张贴的二维码。",
    "venue-code-rotated": "二维码已更换，请扫描最新的二维码。",
    "wrong-code-kind": "这是离店二维码，入店请扫描入口处的二维码。",
    "venue-closed": "该场所已停止登记。",
    "nothing-open": "您在这里没有未离店的登记。",
    "visit-already-closed": "这次到访已经结束。",
    "unknown-dependent": "同行人不是已登记的家属。",
    "invalid-body": "填写的信息格式不正确。",
    "rate-limited": "操作太频繁，请稍后再试。",
  };
  const STATUSES = {
    0: "网络连接失败，请检查网络后重试。",
    400: "请求无效。",
    404: "没有找到。",
    409: "无法完成此操作。",
    410: "数据已被删除。",
    413: "提交的内容太长。",
    422: "请求无效。",
    429: "操作太频繁，请稍后再试。",
  };

  class ApiError extends Error {
    constructor(status, kind, detail) {
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.kind = kind;
      this.detail = detail;
    }
  }

  const storage = {
    get(key) {
      try {
        return window.localStorage.getItem(key);
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        window.localStorage.setItem(key, value);
      } catch {
        // Private browsing may refuse storage: the page still works until it is closed.
      }
    },
    remove(key) {
      try {
        window.localStorage.removeItem(key);
      } catch {
        // Nothing stored, nothing to remove.
      }
    },
  };
  let memoryToken = null;
  const token = () => storage.get(TOKEN) || memoryToken;

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; getRandomValues does not (a LAN address over http).
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // Made once per page load: a double tap, or a retry after a lost answer, checks in once.
  const checkInKey = newKey();
  // Made each time the form is shown: a double tap registers once, a later visitor anew.
  let registerKey = newKey();

  async function api(method, path, body, idempotencyKey) {
    const headers = { Accept: "application/json" };
    const bearer = token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "");
    }
    if (response.status === 204) return null;
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const problem = payload && typeof payload === "object" ? payload : {};
      const kind = typeof problem.type === "string" ? problem.type.split("/").pop() : "";
      throw new ApiError(response.status, kind, problem.detail || problem.title || "");
    }
    return payload;
  }

  // -- messages ---------------------------------------------------------------------------

  function clearMessages() {
    ui.notice.hidden = true;
    ui.error.hidden = true;
  }

  function showNotice(text) {
    // Emptied first, so a screen reader announces the same text again.
    ui.notice.textContent = "";
    window.setTimeout(() => {
      ui.notice.textContent = text;
      ui.notice.hidden = false;
    }, 50);
  }

  function showError(title, detail) {
    ui.errorTitle.textContent = title;
    ui.errorDetail.textContent = detail || "";
    ui.error.hidden = false;
    ui.error.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function fail(error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401 || error.kind === "visitor-erased") {
      forget();
      showRegister();
      showNotice("您的登记已失效，请重新登记。 Your registration is no longer valid; please register again.");
      return;
    }
    const title =
      KINDS[error.kind] ||
      STATUSES[error.status] ||
      (error.status >= 500 ? "服务暂时不可用，请稍后再试。" : "出错了。");
    const english = error.status === 0 ? "Network error; please try again." : error.detail;
    showError(title, english || (error.status >= 500 ? "The service is unavailable." : ""));
  }

  async function busy(button, work) {
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    clearMessages();
    try {
      await work();
    } catch (error) {
      fail(error);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  // -- registration -----------------------------------------------------------------------

  function forget() {
    memoryToken = null;
    storage.remove(TOKEN);
    storage.remove(DEPENDENTS);
  }

  function showRegister() {
    registerKey = newKey();
    stopClock();
    for (const section of [ui.checkin, ui.checkout, ui.ticket, ui.visits, ui.exposures]) {
      section.hidden = true;
    }
    ui.erase.hidden = true;
    document.dispatchEvent(new CustomEvent("fangxin:signed-out"));
    ui.homeIntro.hidden = page.mode !== "home";
    // On an entry poster's page the one button registers and checks in.
    const oneTap = page.mode === "checkin";
    ui.registerZh.textContent = oneTap ? "登记并入店" : "登记";
    ui.registerEn.textContent = oneTap ? "Register and check in" : "Register";
    ui.register.hidden = false;
  }

  function splitNames(text) {
    const names = text
      .split(/[,，、;；\n]/)
      .map((name) => name.trim())
      .filter((name) => name.length > 0);
    return [...new Set(names)];
  }

  function register(event) {
    event.preventDefault();
    const form = ui.registerForm.elements;
    const name = form.name.value.trim();
    const phone = form.phone.value.trim();
    const dependents = splitNames(form.dependents.value);
    if (!name) {
      showError("请填写姓名。", "Please enter your name.");
      form.name.focus();
      return;
    }
    if (!/^\+?[0-9][0-9 -]{4,22}[0-9]$/.test(phone)) {
      showError("请填写正确的手机号。", "Please enter a valid phone number.");
      form.phone.focus();
      return;
    }
    if (dependents.length > 10 || dependents.some((d) => d.length > 80)) {
      showError("家属最多 10 位，每个姓名不超过 80 字。", "At most 10 dependents, 80 characters each.");
      return;
    }
    busy(ui.registerSubmit, async () => {
      const made = await api("POST", "/v1/visitors", { name, phone, dependents }, registerKey);
      memoryToken = made.token;
      storage.set(TOKEN, made.token);
      storage.set(DEPENDENTS, JSON.stringify(dependents));
      ui.registerForm.reset();
      ui.register.hidden = true;
      if (page.mode === "checkin") {
        renderParty();
        await doCheckIn([]);
      } else {
        await showAction();
      }
      startListening();
    });
  }

  // -- check-in and check-out -------------------------------------------------------------

  function storedDependents() {
    try {
      const names = JSON.parse(storage.get(DEPENDENTS) || "[]");
      return Array.isArray(names) ? names.filter((n) => typeof n === "string") : [];
    } catch {
      return [];
    }
  }

  function renderParty() {
    const names = storedDependents();
    ui.partyList.replaceChildren(
      ...names.map((name) => {
        const label = document.createElement("label");
        label.className = "member";
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = name;
        box.dataset.testid = "party-member";
        label.append(box, document.createTextNode(name));
        return label;
      }),
    );
    ui.party.hidden = names.length === 0;
  }

  async function showAction() {
    ui.register.hidden = true;
    ui.homeIntro.hidden = true;
    ui.erase.hidden = false;
    ui.ticket.hidden = true;
    if (page.mode === "checkout") {
      ui.checkout.hidden = false;
    } else if (page.mode === "checkin") {
      renderParty();
      ui.checkin.hidden = false;
    }
    try {
      await loadVisits();
      await loadExposures();
      document.dispatchEvent(new CustomEvent("fangxin:signed-in"));
    } catch (error) {
      fail(error);
    }
  }

  let openVisitId = null;

  async function doCheckIn(party) {
    const made = await api("POST", "/v1/check-ins", { code: page.code, party }, checkInKey);
    document.dispatchEvent(new CustomEvent("fangxin:checked-in", { detail: made }));
    ui.checkin.hidden = true;
    ui.erase.hidden = false;
    openVisitId = made.visit_id;
    showTicket({
      title: "已登记入店 · Checked in",
      venue: made.venue.name,
      timeLabel: ["入店时间", "Checked in at"],
      time: made.checked_in_at,
      since: made.checked_in_at,
      out: false,
    });
    ui.leave.hidden = false;
    await loadVisits();
    await loadExposures();
  }

  function checkIn() {
    busy(ui.checkinButton, async () => {
      const party = Array.from(ui.partyList.querySelectorAll("input:checked"), (b) => b.value);
      await doCheckIn(party);
    });
  }

  function leave() {
    if (!openVisitId) return;
    busy(ui.leave, async () => {
      const done = await api("POST", "/v1/check-outs", { visit_id: openVisitId });
      openVisitId = null;
      ui.leave.hidden = true;
      const venue = ui.venueName.textContent;
      showTicket({
        title: "已离店 · Checked out",
        venue,
        timeLabel: ["离店时间", "Checked out at"],
        time: done.checked_out_at,
        dwellSeconds: done.dwell_seconds,
        out: true,
      });
      await loadVisits();
    });
  }

  function checkOut() {
    busy(ui.checkoutButton, async () => {
      const done = await api("POST", "/v1/check-outs", { code: page.code });
      ui.checkout.hidden = true;
      showTicket({
        title: "已离店 · Checked out",
        venue: "",
        timeLabel: ["离店时间", "Checked out at"],
        time: done.checked_out_at,
        dwellSeconds: done.dwell_seconds,
        out: true,
      });
      // The answer names no venue: the visit list does.
      const visits = await loadVisits();
      const visit = visits.find((v) => v.visit_id === done.visit_id);
      if (visit && visit.venue.name) ui.venueName.textContent = visit.venue.name;
    });
  }

  // -- the confirmation ticket and its live clock -----------------------------------------

  let clockTimer = null;
  let since = null;

  function formatDwell(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = s % 60;
    if (h > 0) return `${h} 小时 ${m} 分 · ${h} h ${m} min`;
    if (m > 0) return `${m} 分 ${rest} 秒 · ${m} min ${rest} s`;
    return `${rest} 秒 · ${rest} s`;
  }

  function tick() {
    const now = new Date();
    ui.liveDate.textContent = dateFormat.format(now);
    ui.liveClock.textContent = timeFormat.format(now);
    if (since) ui.dwell.textContent = formatDwell((now - since) / 1000);
  }

  function stopClock() {
    if (clockTimer !== null) window.clearInterval(clockTimer);
    clockTimer = null;
  }

  function labelled(element, chinese, english) {
    const en = document.createElement("span");
    en.className = "en";
    en.textContent = english;
    element.replaceChildren(document.createTextNode(chinese), en);
  }

  function showTicket({ title, venue, timeLabel, time, since: from, dwellSeconds, out }) {
    ui.ticketTitle.textContent = title;
    ui.venueName.textContent = venue || "—";
    labelled(ui.ticketTimeLabel, timeLabel[0], timeLabel[1]);
    const at = new Date(time);
    ui.ticketTime.textContent = `${dateFormat.format(at)} ${timeFormat.format(at)}`;
    since = from ? new Date(from) : null;
    const dwellLabel = ui.dwellRow.querySelector("dt");
    if (since) labelled(dwellLabel, "已在店", "Here for");
    else labelled(dwellLabel, "停留时长", "Time spent");
    if (dwellSeconds !== undefined) ui.dwell.textContent = formatDwell(dwellSeconds);
    ui.dwellRow.hidden = !since && dwellSeconds === undefined;
    ui.ticket.classList.toggle("out", Boolean(out));
    // The ticket names the venue now; "you are checking in at" above it would mislead.
    ui.banner.hidden = true;
    ui.ticket.hidden = false;
    document.dispatchEvent(new CustomEvent("fangxin:ticket"));
    stopClock();
    tick();
    clockTimer = window.setInterval(tick, 1000);
    ui.ticket.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  // -- the visitor's recent visits --------------------------------------------------------

  function visitItem(visit) {
    const item = document.createElement("li");
    item.className = "visit";
    item.dataset.testid = "visit";
    item.dataset.visitId = visit.visit_id;
    item.dataset.state = visit.checked_out_at ? "closed" : "open";
    if (visit.checkout_reason) item.dataset.reason = visit.checkout_reason;

    const venue = document.createElement("span");
    venue.className = "visit-venue";
    venue.textContent = visit.venue.name || "—";
    if (visit.person && visit.person !== "self") {
      const who = document.createElement("span");
      who.className = "visit-person";
      who.textContent = ` · 家属 ${visit.person}`;
      venue.append(who);
    }

    const start = new Date(visit.checked_in_at);
    const when = document.createElement("span");
    when.className = "visit-when";
    const until = visit.checked_out_at
      ? shortTimeFormat.format(new Date(visit.checked_out_at))
      : "…";
    when.textContent = `${dayFormat.format(start)} ${shortTimeFormat.format(start)} – ${until}`;

    const badge = document.createElement("span");
    badge.className = visit.checked_out_at ? "badge" : "badge open";
    badge.dataset.testid = "visit-status";
    const [zh, en] = visit.checked_out_at
      ? REASONS[visit.checkout_reason] || ["已离店", "Checked out"]
      : ["在店中", "Here now"];
    labelled(badge, zh, en);

    item.append(venue, badge, when);
    return item;
  }

  async function loadVisits() {
    const answer = await api("GET", "/v1/me/visits");
    const visits = Array.isArray(answer && answer.visits) ? answer.visits : [];
    const recent = visits.slice(-MAX_VISITS_SHOWN).reverse();
    ui.visitList.replaceChildren(...recent.map(visitItem));
    ui.noVisits.hidden = recent.length > 0;
    ui.visits.hidden = false;
    return visits;
  }

  // -- exposure alerts, on every load and live -----------------------------------------------

  const shownExposures = new Set();

  function exposureItem(exposure) {
    const item = document.createElement("li");
    item.className = "alert-item";
    item.dataset.testid = "exposure";
    const venue = document.createElement("strong");
    venue.textContent = (exposure.venue && exposure.venue.name) || "—";
    const when = document.createElement("span");
    when.className = "alert-when";
    const start = new Date(exposure.from);
    const end = new Date(exposure.to);
    when.textContent = `${dayFormat.format(start)} ${shortTimeFormat.format(start)} – ${shortTimeFormat.format(end)}`;
    item.append(venue, when);
    if (typeof exposure.advice === "string" && exposure.advice) {
      const advice = document.createElement("p");
      advice.className = "alert-advice";
      advice.textContent = exposure.advice;
      item.append(advice);
    }
    return item;
  }

  function addExposures(exposures, live) {
    let added = 0;
    for (const exposure of exposures) {
      const key = `${exposure.venue && exposure.venue.venue_id}|${exposure.from}|${exposure.to}`;
      if (shownExposures.has(key)) continue;
      shownExposures.add(key);
      ui.exposureList.prepend(exposureItem(exposure));
      added += 1;
    }
    if (shownExposures.size > 0) ui.exposures.hidden = false;
    if (live && added > 0) {
      showNotice("新的风险提醒，请查看。 New exposure alert: please read it.");
    }
  }

  async function loadExposures() {
    const answer = await api("GET", "/v1/me/exposures");
    addExposures(Array.isArray(answer && answer.exposures) ? answer.exposures : [], false);
  }

  // Server-sent events read with fetch: EventSource cannot send the bearer token.
  let listening = false;

  async function listen() {
    const bearer = token();
    if (!bearer) {
      listening = false;
      return;
    }
    try {
      const response = await fetch("/v1/me/events", {
        headers: { Authorization: `Bearer ${bearer}`, Accept: "text/event-stream" },
        credentials: "omit",
        cache: "no-store",
      });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // Lines may end in CR LF (litestar's do): read them all as LF.
        buffer += value.replace(/\r\n?/g, "\n");
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          handleEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
        }
      }
    } catch {
      // The stream broke (network, restart): try again shortly.
    }
    window.setTimeout(listen, 5000);
  }

  function handleEvent(block) {
    let kind = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) kind = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trim());
    }
    if (data.length === 0) return;
    try {
      const payload = JSON.parse(data.join("\n"));
      // Other kinds (a venue's `notice`) are shopper-outreach.js's.
      if (kind === "exposure") addExposures([payload], true);
      else document.dispatchEvent(new CustomEvent(`fangxin:${kind}`, { detail: payload }));
    } catch {
      // An event that is not JSON is ignored.
    }
  }

  function startListening() {
    if (listening || !token()) return;
    listening = true;
    listen();
  }

  // -- erasure ----------------------------------------------------------------------------

  function erase() {
    const sure = window.confirm(
      "确定删除您的全部数据吗？删除后无法恢复。\nErase all your data? This cannot be undone.",
    );
    if (!sure) return;
    busy(ui.erase, async () => {
      try {
        await api("DELETE", "/v1/me");
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 401) throw error;
      }
      forget();
      showRegister();
      showNotice("您的数据已删除。 Your data has been erased.");
    });
  }

  // What shopper-outreach.js (notices, accesses, risk levels) builds on.
  window.FangxinShopper = { api, fail, labelled, showNotice, page, dayFormat, shortTimeFormat };

  // -- start ------------------------------------------------------------------------------

  ui.registerForm.addEventListener("submit", register);
  ui.checkinButton.addEventListener("click", checkIn);
  ui.checkoutButton.addEventListener("click", checkOut);
  ui.erase.addEventListener("click", erase);
  ui.leave.addEventListener("click", leave);

  const PROBLEMS = {
    "invalid-venue-code": "This code is not a venue's; scan the poster at the entrance.",
    "venue-code-rotated": "This poster was replaced; scan the current poster.",
    "wrong-code-kind": "This is the till's checkout code; scan the poster at the entrance to check in.",
  };

  function showVenue() {
    if (!page.venue_name) return;
    const entering = page.mode === "checkin";
    labelled(
      ui.bannerLabel,
      entering ? "您正在登记进入" : "您正在离开",
      entering ? "You are checking in at" : "You are checking out of",
    );
    ui.bannerVenue.textContent = page.venue_name;
    ui.bannerRegion.textContent = page.region_name || "";
    ui.banner.hidden = false;
  }

  if (page.mode === "invalid") {
    showError(KINDS[page.problem] || "页面地址无效。", PROBLEMS[page.problem] || "This page address is not valid.");
  } else if (!["home", "checkin", "checkout"].includes(page.mode)) {
    showError("页面地址无效。", "This page address is not valid.");
  } else {
    showVenue();
    if (token()) {
      showAction();
      startListening();
    } else {
      showRegister();
      if (page.mode === "home") ui.register.hidden = true;
    }
  }
})();
