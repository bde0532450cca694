// The API reference page: Swagger UI, served by the service itself, reading its OpenAPI document.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.document,
    domNode: root,
    deepLinking: true,
    layout: "BaseLayout",
    presets: [window.SwaggerUIBundle.presets.apis],
    // No calls anywhere but this service: no online validator badge.
    validatorUrl: null,
    displayOperationId: true,
    defaultModelsExpandDepth: 0,
    // Swagger UI's server picker has no label of its own (axe select-name).
    onComplete: () => {
      const servers = document.getElementById("servers");
      if (servers) servers.setAttribute("aria-label", "Server");
    },
  });
});
