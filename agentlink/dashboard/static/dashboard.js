// AgentLink dashboard: refresh the parts of the page every few seconds without a reload.
// Every element with data-part="<name>" is fetched again as ?part=<name> (the same page, the
// same filters) and its content replaced by the server's HTML. Without this script the
// pages work as they are; with it they stay current. Updates pause while the tab is hidden,
// while the keyboard focus is inside a part (so it is never pulled away), and when the
// "Pause updates" button says so. A session that ended sends the page to the sign-in form.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh-ms"), 10) || 3000;
  var parts = Array.prototype.slice.call(document.querySelectorAll("[data-part]"));
  var pauseButton = document.querySelector("[data-pause]");
  var paused = false;
  var tick = 0;
  if (!parts.length) { return; }

  function partUrl(name) {
    var url = new URL(window.location.href);
    url.hash = "";
    url.searchParams.set("part", name);
    return url.toString();
  }

  function refresh(part) {
    if (part.getAttribute("data-loading") ||
        (part.contains(document.activeElement) && document.activeElement !== body)) {
      return Promise.resolve();
    }
    part.setAttribute("data-loading", "true");
    return fetch(partUrl(part.getAttribute("data-part")), {
      credentials: "same-origin",
      headers: { "Accept": "text/html" },
      cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) {
        window.location.assign(body.getAttribute("data-login") + "?next=" +
          encodeURIComponent(window.location.pathname + window.location.search));
        return;
      }
      if (!response.ok) { part.setAttribute("data-stale", "true"); return; }
      return response.text().then(function (html) {
        if (part.contains(document.activeElement) && document.activeElement !== body) { return; }
        part.innerHTML = html;
        part.removeAttribute("data-stale");
      });
    }).catch(function () {
      part.setAttribute("data-stale", "true");
    }).then(function () { part.removeAttribute("data-loading"); });
  }

  function round() {
    tick += 1;
    if (paused || document.hidden) { return; }
    parts.forEach(function (part) {
      var slow = parseInt(part.getAttribute("data-every"), 10) || 1;
      if (tick % slow === 0) { refresh(part); }
    });
  }

  if (pauseButton) {
    pauseButton.addEventListener("click", function () {
      paused = !paused;
      pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
      pauseButton.textContent = paused ? "Resume updates" : "Pause updates";
    });
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !paused) { parts.forEach(refresh); }
  });
  window.setInterval(round, every);
})();
