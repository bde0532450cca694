// The console's start: sign in, then the part of the console that the signed-in role has.
// The API refuses everything else, whatever a page shows.
"use strict";

(() => {
  const { $, fail } = window.FangxinKit;
  const views = window.FangxinViews;
  const ROLE_NAMES = {
    tracer: "流调员 Tracer",
    supervisor: "审批人 Supervisor",
    auditor: "审计员 Auditor",
    admin: "平台管理员 Admin",
  };
  const PARTS = ["tracer-view", "supervisor-view", "risk-view", "auditor-view", "admin-view", "token-once"];

  function hideAll() {
    for (const part of PARTS) $(part).hidden = true;
  }

  function showSignedOut() {
    window.FangxinKit.forgetSession();
    hideAll();
    $("role").hidden = true;
    $("sign-out").hidden = true;
    $("signed-out").hidden = false;
  }

  async function showSignedIn(session) {
    hideAll();
    $("signed-out").hidden = true;
    $("sign-out").hidden = false;
    const badge = $("role");
    badge.textContent = ROLE_NAMES[session.role] || session.role;
    badge.hidden = false;
    if (session.role === "supervisor") await views.queue.show();
    if (session.role === "supervisor") await views.risk.show();
    if (session.role === "tracer" || session.role === "supervisor") await views.cases.show(session);
    if (session.role === "auditor") await views.audit.show();
    if (session.role === "admin") await views.admin.show();
    if (!ROLE_NAMES[session.role]) {
      fail(new window.FangxinKit.ApiError(403, "This console is for officers, auditors and the admin."));
    }
  }

  window.FangxinKit.startSession(showSignedIn, showSignedOut);
})();
