// The merchant console: sign in with a session cookie, then venues, posters, occupancy,
// statistics and assisted check-in. Every text from the server goes in with textContent.
"use strict";

(() => {
  const { $, api, notice, fail, busy, regionPicker, ApiError } = window.FangxinKit;
  const OCCUPANCY_EVERY_MS = 15000;
  let current = null;
  let occupancyTimer = null;

  // -- signing in and out -------------------------------------------------------------------

  function showSignedOut() {
    window.FangxinKit.forgetSession();
    current = null;
    window.clearInterval(occupancyTimer);
    $("signed-in").hidden = true;
    $("sign-out").hidden = true;
    $("token-once").hidden = true;
    $("signed-out").hidden = false;
  }

  async function signIn(token) {
    await window.FangxinKit.signIn(token);
    await showSignedIn();
  }

  async function showSignedIn() {
    $("signed-out").hidden = true;
    $("token-once").hidden = true;
    $("signed-in").hidden = false;
    $("sign-out").hidden = false;
    await loadVenues();
  }

  let pendingToken = null;
  $("merchant-register-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    busy(form, async () => {
      const made = await api(
        "POST",
        "/v1/merchants",
        { name: form.elements.name.value.trim(), contact_phone: form.elements.phone.value.trim() },
        true,
      );
      form.reset();
      pendingToken = made.token;
      $("token-value").textContent = made.token;
      $("signed-out").hidden = true;
      $("token-once").hidden = false;
      notice("注册成功，请保存令牌。 Registered: keep your token.");
    });
  });

  $("token-continue").addEventListener("click", (event) => {
    busy(event.currentTarget, async () => {
      const token = pendingToken;
      pendingToken = null;
      $("token-value").textContent = "";
      await signIn(token);
    });
  });

  // -- venues --------------------------------------------------------------------------------

  async function loadVenues(selectId) {
    const answer = await api("GET", "/v1/venues");
    const venues = answer.venues || [];
    $("venue-list").replaceChildren(
      ...venues.map((venue) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "venue-pick";
        button.dataset.testid = "venue-pick";
        button.textContent = venue.name;
        button.setAttribute("aria-current", String(current && current.venue_id === venue.venue_id));
        button.addEventListener("click", () => showVenue(venue));
        return button;
      }),
    );
    $("no-venues").hidden = venues.length > 0;
    const chosen = venues.find((v) => v.venue_id === selectId) || (current ? null : venues[0]);
    if (chosen) showVenue(chosen);
  }

  function markCurrent() {
    for (const button of document.querySelectorAll('[data-testid="venue-pick"]')) {
      button.setAttribute("aria-current", String(button.textContent === current.name));
    }
  }

  function posterUrl(venue, kind, format, bust) {
    const stamp = bust ? `&v=${Date.now()}` : "";
    return `/v1/venues/${venue.venue_id}/poster.${format}?kind=${kind}${stamp}`;
  }

  function showVenue(venue, bust) {
    current = venue;
    markCurrent();
    $("venue-form-card").hidden = true;
    $("venue-detail").hidden = false;
    $("detail-name").textContent = venue.name;
    $("detail-address").textContent = `${venue.address} · ${venue.region_name || venue.region}`;
    for (const kind of ["entry", "checkout"]) {
      $(`poster-${kind}`).src = posterUrl(venue, kind, "svg", bust);
      $(`print-${kind}`).href = `/merchant/posters/${venue.venue_id}?kind=${kind}`;
      $(`download-${kind}`).href = posterUrl(venue, kind, "png", bust);
    }
    window.clearInterval(occupancyTimer);
    refreshOccupancy();
    occupancyTimer = window.setInterval(refreshOccupancy, OCCUPANCY_EVERY_MS);
    loadStats();
    document.dispatchEvent(new CustomEvent("fangxin:venue", { detail: venue }));
  }

  async function refreshOccupancy() {
    if (!current) return;
    try {
      const found = await api("GET", `/v1/venues/${current.venue_id}/occupancy`);
      const meter = $("occupancy-meter");
      const text = found.capacity
        ? `${found.current} / ${found.capacity} 人 · ${found.current} of ${found.capacity} people`
        : `${found.current} 人 · ${found.current} people (no capacity set)`;
      $("occupancy-text").textContent = text;
      meter.max = found.capacity || Math.max(found.current, 1);
      meter.high = meter.max * 0.8;
      meter.value = found.current;
    } catch (error) {
      fail(error);
    }
  }

  // -- the new-venue form and its region picker ---------------------------------------------

  const resetRegions = regionPicker($("region-province"), $("region-city"), $("region-county"));

  $("new-venue").addEventListener("click", async () => {
    $("venue-detail").hidden = true;
    $("venue-form-card").hidden = false;
    try {
      await resetRegions();
    } catch (error) {
      fail(error);
    }
    $("venue-name-input").focus();
  });

  $("venue-cancel").addEventListener("click", () => {
    $("venue-form-card").hidden = true;
    if (current) $("venue-detail").hidden = false;
  });

  $("venue-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = form.elements;
    busy(form, async () => {
      const body = {
        name: f.name.value.trim(),
        address: f.address.value.trim(),
        region: f.county.value,
        category: f.category.value,
      };
      if (f.capacity.value) body.capacity = Number(f.capacity.value);
      if (f.max_dwell.value) body.max_dwell_minutes = Number(f.max_dwell.value);
      const made = await api("POST", "/v1/venues", body, true);
      form.reset();
      current = null;
      await loadVenues(made.venue_id);
      notice("场所已创建。 Venue created.");
    });
  });

  // -- codes, assisted check-in ----------------------------------------------------------

  $("rotate-codes").addEventListener("click", (event) => {
    const sure = window.confirm(
      "更换后旧的二维码立即失效，需要重新打印海报。确定更换吗？\nThe old codes stop working at once and the posters must be printed again. Replace them?",
    );
    if (!sure) return;
    busy(event.currentTarget, async () => {
      await api("POST", `/v1/venues/${current.venue_id}/code-rotations`, undefined, true);
      showVenue(current, true);
      notice("二维码已更换，请打印新海报。 Codes replaced: print the new posters.");
    });
  });

  $("assisted-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    busy(form, async () => {
      await api(
        "POST",
        `/v1/venues/${current.venue_id}/assisted-check-ins`,
        { name: form.elements.name.value.trim(), phone: form.elements.phone.value.trim() },
        true,
      );
      form.reset();
      notice("已代为登记入店。 Checked in.");
      refreshOccupancy();
    });
  });

  // -- statistics ---------------------------------------------------------------------------

  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const isoDay = (date) =>
    `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;

  function defaultRange() {
    const today = new Date();
    $("stats-to").value = isoDay(today);
    $("stats-from").value = isoDay(today);
  }

  async function loadStats() {
    if (!current) return;
    const from = new Date(`${$("stats-from").value}T00:00:00`);
    const to = new Date(`${$("stats-to").value}T00:00:00`);
    to.setDate(to.getDate() + 1);
    const query = new URLSearchParams({
      from: from.toISOString(),
      to: to.toISOString(),
      bucket: $("stats-bucket").value,
      tz: zone,
    });
    try {
      const stats = await api("GET", `/v1/venues/${current.venue_id}/stats?${query}`);
      renderTable(stats.buckets, $("stats-bucket").value);
      const seconds = $("stats-bucket").value === "day" ? 86400 : 3600;
      window.FangxinChart.draw($("chart-visits"), $("chart-dwell"), stats.buckets, seconds);
    } catch (error) {
      fail(error);
    }
  }

  const minutes = (seconds) => (seconds === null || seconds === undefined ? "—" : `${Math.round(seconds / 60)} 分`);

  function renderTable(buckets, bucket) {
    const format = new Intl.DateTimeFormat("zh-CN", bucket === "day"
      ? { month: "numeric", day: "numeric" }
      : { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    $("stats-rows").replaceChildren(
      ...buckets.map((b) => {
        const row = document.createElement("tr");
        row.dataset.testid = "stats-row";
        const cells = b.suppressed
          ? [format.format(new Date(b.start)), "少于 5 人 · suppressed", "", "", ""]
          : [
              format.format(new Date(b.start)),
              String(b.check_ins),
              String(b.unique_visitors),
              minutes(b.median_dwell_seconds),
              minutes(b.p90_dwell_seconds),
            ];
        if (b.suppressed) row.className = "suppressed";
        for (const text of cells) {
          const cell = document.createElement("td");
          cell.textContent = text;
          row.append(cell);
        }
        if (b.suppressed) {
          row.children[1].colSpan = 4;
          for (const extra of Array.from(row.children).slice(2)) extra.remove();
        }
        return row;
      }),
    );
  }

  $("stats-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadStats();
  });

  // What merchant-outreach.js (edits, notices, token rotation) builds on.
  window.FangxinMerchant = {
    api,
    busy,
    notice,
    ApiError,
    current: () => current,
    async reload(venueId) {
      current = null;
      await loadVenues(venueId);
    },
    offerToken(token) {
      pendingToken = token;
      $("token-value").textContent = token;
      $("signed-in").hidden = true;
      $("sign-out").hidden = true;
      $("token-once").hidden = false;
    },
  };

  // -- start --------------------------------------------------------------------------------

  defaultRange();
  window.FangxinKit.startSession(showSignedIn, showSignedOut);
})();
