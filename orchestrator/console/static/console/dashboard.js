// Refreshes the dashboard in place: fetches the panel fragment every few seconds and swaps it in.
// On any failure (server restarting, session expired) it keeps the last good panel and tries again.
(function () {
  "use strict";
  function start() {
    var root = document.getElementById("console-dashboard");
    if (!root) { return; }
    var url = root.getAttribute("data-panel-url");
    var seconds = parseInt(root.getAttribute("data-refresh-s"), 10) || 5;
    function refresh() {
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (!response.ok || response.redirected) { throw new Error("panel unavailable"); }
          return response.text();
        })
        .then(function (html) { root.innerHTML = html; root.setAttribute("data-refreshed", Date.now()); })
        .catch(function () { /* keep the last panel */ })
        .finally(function () { window.setTimeout(refresh, seconds * 1000); });
    }
    window.setTimeout(refresh, seconds * 1000);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
