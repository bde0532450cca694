// What every console page shares: the API call with its session cookie and CSRF header,
// messages, busy buttons, the region picker, signing in and out. Server text goes in with
// textContent only.
"use strict";

window.FangxinKit = (() => {
  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
  const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
  const state = { csrf: null, onSignedOut: () => {} };

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.detail = detail;
    }
  }

  function newKey() {
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(method, path, body, idempotent) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.csrf && UNSAFE.has(method)) headers["X-CSRF-Token"] = state.csrf;
    if (idempotent) headers["Idempotency-Key"] = newKey();
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "Network error; please try again.");
    }
    if (response.status === 204) return null;
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError(response.status, (payload && (payload.detail || payload.title)) || "");
    }
    return payload;
  }

  function notice(text) {
    const box = $("notice");
    box.textContent = "";
    window.setTimeout(() => {
      box.textContent = text;
      box.hidden = false;
    }, 50);
  }

  const TITLES = {
    0: "网络连接失败。",
    400: "填写的信息有误。",
    401: "登录已失效，请重新登录。",
    403: "没有权限。",
    404: "没有找到。",
    409: "无法完成此操作。",
    410: "数据已被删除。",
    429: "操作太频繁，请稍后再试。",
  };

  function fail(error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401 && state.csrf) state.onSignedOut();
    $("error-title").textContent = TITLES[error.status] || "出错了。";
    $("error-detail").textContent = error.detail || "";
    $("error").dataset.status = String(error.status);
    $("error").hidden = false;
  }

  async function busy(form, work) {
    const button = form.querySelector("button[type=submit]") || form;
    if (button.disabled) return;
    button.disabled = true;
    $("error").hidden = true;
    try {
      await work();
    } catch (error) {
      fail(error);
    } finally {
      button.disabled = false;
    }
  }

  // A refusal shown stays until the next attempt or until the form it was about is edited.
  document.addEventListener("input", () => {
    $("error").hidden = true;
  });

  // Runs `work` with the form's submit button busy; the page does not reload.
  function onSubmit(id, work) {
    $(id).addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      busy(form, () => work(form, form.elements));
    });
  }

  async function fillRegions(select, parent) {
    const query = parent ? `?parent=${parent}` : "";
    const answer = await api("GET", `/v1/regions${query}`);
    const blank = document.createElement("option");
    blank.value = "";
    blank.textContent = "请选择 Choose…";
    select.replaceChildren(
      blank,
      ...answer.regions.map((region) => {
        const option = document.createElement("option");
        option.value = region.code;
        option.textContent = region.name;
        return option;
      }),
    );
  }

  // A province, city and county picker: each choice fills the level below it.
  function regionPicker(province, city, county) {
    province.addEventListener("change", () => {
      county.replaceChildren();
      city.replaceChildren();
      if (province.value) fillRegions(city, province.value).catch(fail);
    });
    city.addEventListener("change", () => {
      county.replaceChildren();
      if (city.value) fillRegions(county, city.value).catch(fail);
    });
    return async () => {
      await fillRegions(province);
      city.replaceChildren();
      county.replaceChildren();
    };
  }

  // An element with text (never HTML) and attributes; `testid` sets data-testid.
  function el(tag, text, attrs) {
    const made = document.createElement(tag);
    if (text !== undefined && text !== null) made.textContent = text;
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "testid") made.dataset.testid = value;
      else made.setAttribute(key, value);
    }
    return made;
  }

  // The agencies work in Beijing time; China has kept +08:00 all year since 1991, so a
  // wall-clock input converts with a fixed offset.
  const ZONE = "Asia/Shanghai";
  const OFFSET_MS = 8 * 3600 * 1000;
  const stamp = new Intl.DateTimeFormat("zh-CN", {
    timeZone: ZONE,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });

  function when(iso) {
    return iso ? stamp.format(new Date(iso)) : "—";
  }

  // A `datetime-local` value (to the second) of a moment, in Beijing time.
  function toInput(moment) {
    return new Date(new Date(moment).getTime() + OFFSET_MS).toISOString().slice(0, 19);
  }

  // The RFC 3339 time of a `datetime-local` or `date` value read as Beijing time.
  function fromInput(value) {
    const full = value.length === 10 ? `${value}T00:00:00` : value.length === 16 ? `${value}:00` : value;
    return `${full}+08:00`;
  }

  async function signIn(token) {
    const session = await api("POST", "/v1/sessions", { token });
    state.csrf = session.csrf_token;
    return session;
  }

  async function signOut() {
    await api("DELETE", "/v1/sessions/current");
    state.csrf = null;
  }

  // The session a reloaded page still has, or null when it must sign in.
  async function resume() {
    try {
      const session = await api("GET", "/v1/sessions/current");
      state.csrf = session.csrf_token;
      return session;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return null;
      throw error;
    }
  }

  function forgetSession() {
    state.csrf = null;
  }

  // Wires the sign-in form and the sign-out button, and resumes a reloaded page's session.
  function startSession(showSignedIn, showSignedOut) {
    state.onSignedOut = showSignedOut;
    onSubmit("signin-form", async (form, f) => {
      const session = await signIn(f.token.value.trim());
      form.reset();
      await showSignedIn(session);
      notice("已登录。 Signed in.");
    });
    $("sign-out").addEventListener("click", (event) => {
      busy(event.currentTarget, async () => {
        await signOut();
        showSignedOut();
        notice("已退出登录。 Signed out.");
      });
    });
    resume()
      .then((session) => (session ? showSignedIn(session) : showSignedOut()))
      .catch(fail);
  }

  return {
    $,
    ApiError,
    api,
    notice,
    fail,
    busy,
    onSubmit,
    fillRegions,
    regionPicker,
    el,
    when,
    toInput,
    fromInput,
    signIn,
    forgetSession,
    startSession,
  };
})();
