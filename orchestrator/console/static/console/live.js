// The live view of a task: tails /v2/tasks/{id}/events with EventSource and shows tokens as they arrive.
// The browser sends the admin session cookie; the SSE endpoint accepts a logged-in staff user.
(function () {
  "use strict";
  function start() {
    var root = document.querySelector(".console-live");
    if (!root) { return; }
    var el = function (id) { return document.getElementById(id); };
    var output = el("live-output"), events = el("live-events");
    var tokens = 0;
    var source = new EventSource(root.getAttribute("data-events-url"));

    function note(name, data) {
      var item = document.createElement("li");
      item.textContent = name + " " + JSON.stringify(data);
      events.appendChild(item);
    }
    function finish(state) {
      el("live-state").textContent = state;
      el("live-connection").textContent = "closed";
      root.setAttribute("data-finished", state);
      var cancel = el("live-cancel");
      if (cancel) { cancel.disabled = true; }
      source.close(); // otherwise EventSource reconnects after the server closes the stream
    }
    function on(name, handler) {
      source.addEventListener(name, function (event) { handler(JSON.parse(event.data)); });
    }

    source.addEventListener("open", function () { el("live-connection").textContent = "open"; });
    on("started", function (data) {
      note("started", data);
      if (data.pool_id) { el("live-pool").textContent = data.pool_id; }
    });
    on("token", function (data) {
      output.appendChild(document.createTextNode(data.t));
      tokens += 1;
      el("live-tokens").textContent = tokens;
      el("live-state").textContent = "running";
    });
    on("metrics", function (data) {
      note("metrics", data);
      // The server's measure: a late attach replays tokens in bursts, so a rate counted here would be wrong.
      if (typeof data.tokens_per_s === "number") { el("live-rate").textContent = data.tokens_per_s.toFixed(1); }
      if (data.prep && data.prep.pool_id) { el("live-pool").textContent = data.prep.pool_id; }
    });
    on("end", function (data) {
      note("end", data);
      finish(data.canceled ? "canceled" : "completed");
    });
    source.addEventListener("error", function (event) {
      if (event.data) { // an `error` frame from the server: the task failed
        var data = JSON.parse(event.data);
        note("error", data);
        finish("failed: " + data.code);
      } else if (source.readyState === EventSource.CONNECTING) {
        el("live-connection").textContent = "reconnecting…"; // resumes with Last-Event-ID
      } else {
        el("live-connection").textContent = "closed";
      }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
