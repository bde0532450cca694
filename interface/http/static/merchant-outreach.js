// The merchant console's edit form, notices to recent visitors (精准推送) and token rotation,
// built on what merchant.js exposes. Every text from the server goes in with textContent.
"use strict";

(() => {
  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
  const M = () => window.FangxinMerchant;
  const HOUR_MS = 3600 * 1000;

  function showError(title, detail) {
    $("error-title").textContent = title;
    $("error-detail").textContent = detail || "";
    $("error").hidden = false;
  }

  // -- editing a venue ----------------------------------------------------------------------

  const editForm = $("venue-edit-form");

  function closeEdit() {
    editForm.hidden = true;
    $("edit-venue").setAttribute("aria-expanded", "false");
  }

  function openEdit() {
    const venue = M().current();
    if (!venue) return;
    const f = editForm.elements;
    const options = Array.from($("venue-category").options, (o) => o.cloneNode(true));
    if (!options.some((o) => o.value === venue.category)) {
      options.push(new Option(venue.category, venue.category));
    }
    f.category.replaceChildren(...options);
    f.name.value = venue.name;
    f.address.value = venue.address;
    f.category.value = venue.category;
    f.capacity.value = venue.capacity === null ? "" : String(venue.capacity);
    f.max_dwell.value = String(venue.max_dwell_minutes);
    editForm.hidden = false;
    $("edit-venue").setAttribute("aria-expanded", "true");
    f.name.focus();
  }

  $("edit-venue").addEventListener("click", () => (editForm.hidden ? openEdit() : closeEdit()));
  $("edit-cancel").addEventListener("click", closeEdit);
  document.addEventListener("fangxin:venue", () => {
    closeEdit();
    defaultWindow();
    $("notice-result").hidden = true;
  });

  editForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = editForm.elements;
    const venue = M().current();
    M().busy(editForm, async () => {
      const body = {
        name: f.name.value.trim(),
        address: f.address.value.trim(),
        category: f.category.value,
        capacity: f.capacity.value ? Number(f.capacity.value) : null,
        max_dwell_minutes: Number(f.max_dwell.value),
      };
      await M().api("PATCH", `/v1/venues/${venue.venue_id}`, body);
      await M().reload(venue.venue_id);
      M().notice("场所信息已保存。 Venue details saved.");
    });
  });

  // -- notices to recent visitors -------------------------------------------------------------

  const noticeForm = $("notice-form");
  const local = (date) => {
    const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
    return shifted.toISOString().slice(0, 16);
  };

  function defaultWindow() {
    const now = new Date();
    noticeForm.elements.from.value = local(new Date(now.getTime() - 3 * HOUR_MS));
    noticeForm.elements.to.value = "";
  }

  noticeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = noticeForm.elements;
    const venue = M().current();
    const result = $("notice-result");
    result.hidden = true;
    const message = f.message.value.trim();
    if (!message) {
      showError("请填写通知内容。", "Please write the message.");
      f.message.focus();
      return;
    }
    // An empty end means now; a chosen minute counts whole, but never past now.
    const from = new Date(f.from.value);
    const chosen = f.to.value ? new Date(f.to.value).getTime() + 59999 : Date.now();
    const to = new Date(Math.min(chosen, Date.now()));
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || to <= from) {
      showError("请选择有效的时段：结束晚于开始。", "Choose a window whose end follows its start.");
      return;
    }
    M().busy(noticeForm, async () => {
      try {
        const sent = await M().api(
          "POST",
          `/v1/venues/${venue.venue_id}/notices`,
          { message, from: from.toISOString(), to: to.toISOString() },
          true,
        );
        result.textContent =
          typeof sent.reached === "number"
            ? `通知已送达 ${sent.reached} 位顾客。 Reached ${sent.reached} visitors.`
            : "通知已发出，送达不足 5 位顾客。 Sent: reached fewer than 5 visitors.";
        result.hidden = false;
        f.message.value = "";
      } catch (error) {
        if (!(error instanceof M().ApiError) || error.status !== 409) throw error;
        showError("今天的通知已达上限：每个场所每天最多 5 条，请明天再发。", error.detail);
      }
    });
  });

  // -- rotating the merchant's own token ---------------------------------------------------------

  $("rotate-token").addEventListener("click", (event) => {
    const sure = window.confirm(
      "更换后旧令牌立即失效，所有设备都需要用新令牌重新登录。确定更换吗？\nThe old token stops at once and every device must sign in again with the new one. Replace it?",
    );
    if (!sure) return;
    M().busy(event.currentTarget, async () => {
      const made = await M().api("POST", "/v1/merchants/me/token-rotations");
      // This session ended with the old token: the new one, kept, signs in again.
      M().offerToken(made.token);
      M().notice("令牌已更换，请保存新令牌。 Token replaced: keep the new one.");
    });
  });

  defaultWindow();
})();
