// The A4 print view of a poster: the image is read with the console's session cookie.
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("app").dataset.page || "{}");
  const image = document.querySelector('[data-testid="poster-image"]');
  const error = document.querySelector('[data-testid="error"]');
  const kind = page.kind === "checkout" ? "checkout" : "entry";
  image.addEventListener("error", () => {
    error.hidden = false;
  });
  image.src = `/v1/venues/${encodeURIComponent(page.venue_id)}/poster.svg?kind=${kind}`;
  document.querySelector('[data-testid="print-button"]').addEventListener("click", () => window.print());
})();
