// The platform admin's view: agencies with their jurisdiction from the national list,
// officers and auditors, token replacement and deactivation. The admin sees no case data.
"use strict";

(() => {
  const { $, api, notice, busy, onSubmit, regionPicker, el, when } = window.FangxinKit;
  const views = (window.FangxinViews = window.FangxinViews || {});
  const ROLES = { tracer: "流调员 Tracer", supervisor: "审批人 Supervisor" };
  const resetRegions = regionPicker($("jur-province"), $("jur-city"), $("jur-county"));
  let chosen = new Map();
  let agency = null;

  function showToken(holder, token) {
    $("token-holder").textContent = holder;
    $("token-value").textContent = token;
    $("token-once").hidden = false;
    $("token-once").scrollIntoView({ block: "center" });
    $("token-done").focus();
  }

  $("token-done").addEventListener("click", () => {
    $("token-value").textContent = "";
    $("token-once").hidden = true;
  });

  // -- agencies -------------------------------------------------------------------------------

  async function loadAgencies(selectId) {
    const answer = await api("GET", "/v1/agencies");
    $("agency-list").replaceChildren(
      ...answer.agencies.map((found) => {
        const button = el("button", found.name, { type: "button", class: "venue-pick", testid: "agency-pick" });
        button.setAttribute("aria-current", String(agency !== null && agency.agency_id === found.agency_id));
        button.addEventListener("click", () => showAgency(found));
        const item = el("li");
        item.append(button);
        return item;
      }),
    );
    const pick = answer.agencies.find((a) => a.agency_id === selectId);
    if (pick) await showAgency(pick);
  }

  async function showAgency(found) {
    agency = found;
    for (const button of document.querySelectorAll('[data-testid="agency-pick"]')) {
      button.setAttribute("aria-current", String(button.textContent === found.name));
    }
    $("agency-form-card").hidden = true;
    $("agency-detail").hidden = false;
    $("agency-title").textContent = found.name;
    $("agency-jurisdiction").textContent = `管辖 Jurisdiction: ${found.jurisdiction.map((r) => `${r.name}（${r.region}）`).join("、")} · ${when(found.created_at)}`;
    await loadOfficers();
  }

  function chosenChips() {
    $("jur-chosen").replaceChildren(
      ...[...chosen].map(([code, name]) => {
        const chip = el("li", null, { class: "chip", testid: "jur-chip" });
        const remove = el("button", "×", { type: "button", class: "link", "aria-label": `移除 Remove ${name}` });
        remove.addEventListener("click", () => {
          chosen.delete(code);
          chosenChips();
        });
        chip.append(el("span", `${name}（${code}）`), remove);
        return chip;
      }),
    );
  }

  $("new-agency").addEventListener("click", (event) =>
    busy(event.currentTarget, async () => {
      $("agency-detail").hidden = true;
      $("agency-form-card").hidden = false;
      chosen = new Map();
      chosenChips();
      await resetRegions();
      $("agency-name").focus();
    }),
  );
  $("agency-cancel").addEventListener("click", () => {
    $("agency-form-card").hidden = true;
    if (agency) $("agency-detail").hidden = false;
  });

  // The deepest level chosen is the region added: a county, else its city, else the province.
  $("jur-add").addEventListener("click", () => {
    const select = [$("jur-county"), $("jur-city"), $("jur-province")].find((s) => s.value);
    if (!select) return;
    chosen.set(select.value, select.selectedOptions[0].textContent);
    chosenChips();
  });

  onSubmit("agency-form", async (form, f) => {
    const made = await api("POST", "/v1/agencies", { name: f.name.value.trim(), jurisdiction: [...chosen.keys()] }, true);
    form.reset();
    chosen = new Map();
    chosenChips();
    notice("机构已创建。 Agency created.");
    await loadAgencies(made.agency_id);
  });

  // -- accounts -------------------------------------------------------------------------------

  function accountRow(account, kind, cells) {
    const id = kind === "officer" ? account.officer_id : account.auditor_id;
    const row = el("tr", null, { testid: `${kind}-row` });
    row.dataset.name = account.name;
    for (const text of cells) row.append(el("td", text));
    row.append(el("td", account.active ? "有效 Active" : "已停用 Deactivated"));
    const actions = el("td", null, { class: "row" });
    if (account.active) {
      const rotate = el("button", "更换令牌 Replace token", { type: "button", class: "secondary", testid: "rotate-token" });
      rotate.addEventListener("click", () =>
        busy(rotate, async () => {
          const made = await api("POST", `/v1/${kind}s/${id}/token-rotations`);
          showToken(account.name, made.token);
          notice("旧令牌已失效。 The old token no longer works.");
        }),
      );
      const stop = el("button", "停用 Deactivate", { type: "button", class: "secondary danger", testid: "deactivate" });
      stop.addEventListener("click", () => {
        if (!window.confirm(`停用 ${account.name}？其令牌立即失效。\nDeactivate ${account.name}? Their token stops at once.`)) return;
        busy(stop, async () => {
          await api("DELETE", `/v1/${kind}s/${id}`);
          notice("账号已停用。 Account deactivated.");
          await (kind === "officer" ? loadOfficers() : loadAuditors());
        });
      });
      actions.append(rotate, stop);
    }
    row.append(actions);
    return row;
  }

  async function loadOfficers() {
    const answer = await api("GET", `/v1/agencies/${agency.agency_id}/officers`);
    $("officer-rows").replaceChildren(
      ...answer.officers.map((o) => accountRow(o, "officer", [o.name, ROLES[o.role] || o.role])),
    );
  }

  async function loadAuditors() {
    const answer = await api("GET", "/v1/auditors");
    $("auditor-rows").replaceChildren(...answer.auditors.map((a) => accountRow(a, "auditor", [a.name])));
  }

  onSubmit("officer-form", async (form, f) => {
    const name = f.name.value.trim();
    const made = await api("POST", `/v1/agencies/${agency.agency_id}/officers`, { name, role: f.role.value }, true);
    form.reset();
    await loadOfficers();
    showToken(name, made.token);
  });

  onSubmit("auditor-form", async (form, f) => {
    const name = f.name.value.trim();
    const made = await api("POST", "/v1/auditors", { name }, true);
    form.reset();
    await loadAuditors();
    showToken(name, made.token);
  });

  views.admin = {
    async show() {
      $("admin-view").hidden = false;
      agency = null;
      await loadAgencies();
      await loadAuditors();
    },
  };
})();
