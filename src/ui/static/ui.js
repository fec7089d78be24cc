// kubedag web UI: live updates over server-sent events. Written for this project (Apache-2.0,
// like the rest of kubedag); no third-party code. Pages work without it (reload to refresh).
(function () {
  "use strict";
  var main = document.getElementById("content");
  var state = document.getElementById("live-state");
  var live = main && main.getAttribute("data-live");
  // Page refresh: on a change event, fetch this page again and swap the live region only, so the
  // forms (and the focus in them) are left alone.
  if (live && window.EventSource) {
    var pending = false;
    var refresh = function () {
      if (pending) { return; }
      pending = true;
      fetch(window.location.href, { headers: { "X-Kubedag-Live": "1" } })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("live-region");
          var old = document.getElementById("live-region");
          if (fresh && old) { old.replaceWith(fresh); }
        })
        .finally(function () { pending = false; });
    };
    var source = new EventSource(live);
    source.addEventListener("changed", refresh);
    source.onopen = function () { if (state) { state.textContent = "live"; } };
    source.onerror = function () { if (state) { state.textContent = "reconnecting…"; } };
  }
  // Step logs: append each line as it arrives; the server sends "end" when the step's pod ended.
  var log = document.getElementById("log");
  var logState = document.getElementById("log-state");
  if (log && window.EventSource) {
    var logs = new EventSource(log.getAttribute("data-src"));
    var say = function (text) { if (logState) { logState.textContent = text; } };
    logs.onopen = function () { say("following…"); };
    logs.addEventListener("line", function (e) {
      log.appendChild(document.createTextNode(e.data + "\n"));
    });
    logs.addEventListener("note", function (e) { say(e.data); });
    logs.addEventListener("end", function (e) { say(e.data); logs.close(); });
    logs.onerror = function () { say("log stream interrupted; retrying…"); };
  }
})();
