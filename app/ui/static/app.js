/* driftdesk UI: confirmations, and (on a ticket page) keyboard shortcuts and the lease heartbeat.
   Plain JavaScript, no dependencies; every page works without it except the shortcuts. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  document.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });

  window.driftdesk = { csrfToken: csrfToken };
})();
