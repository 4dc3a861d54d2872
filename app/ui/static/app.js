/* driftdesk UI: confirmations, keyboard shortcuts, and the lease countdown with its heartbeat.
   Plain JavaScript, no dependencies. Every action is an ordinary form, so the pages work
   without this file; the shortcuts only press those forms' buttons. */
(function () {
  "use strict";

  var body = document.body;
  var submitting = false;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    submitting = true; // one action per page: a second key press must not send another
  });

  document.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });

  function typing(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function sampleSelects() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-sample-select]:not([disabled])"));
  }

  /* In a drift or data-quality sample, a digit sets the focused row's label and moves on. */
  function labelSampleRow(select, digit) {
    if (digit >= select.options.length) return false;
    select.selectedIndex = digit;
    var all = sampleSelects();
    var next = all[all.indexOf(select) + 1];
    if (next) next.focus();
    else {
      var submit = document.querySelector('[data-key="enter-sample"]');
      if (submit) submit.focus();
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (submitting) return;
    var target = event.target;
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var digit = /^[1-9]$/.test(key) ? parseInt(key, 10) : 0;
    if (digit && target.matches && target.matches("[data-sample-select]")) {
      if (labelSampleRow(target, digit)) event.preventDefault();
      return;
    }
    if (typing(target)) {
      if (key === "Escape") target.blur();
      return;
    }
    if (key === "d") {
      var reason = document.getElementById("reason");
      if (reason) {
        event.preventDefault();
        reason.focus();
      }
      return;
    }
    if (digit && !document.querySelector('[data-key="' + key + '"]')) {
      var first = sampleSelects().filter(function (s) { return !s.value; })[0];
      if (first) {
        event.preventDefault();
        first.focus();
        labelSampleRow(first, digit);
      }
      return;
    }
    var button = document.querySelector('[data-key="' + key + '"]');
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });

  /* ------------------------------------------------------------------ lease */
  var api = { csrfToken: csrfToken };
  window.driftdesk = api;
  if (!body.hasAttribute("data-held")) return;

  var ticketId = body.getAttribute("data-ticket");
  var leaseSeconds = parseInt(body.getAttribute("data-lease-seconds"), 10) || 900;
  var expires = Date.parse(body.getAttribute("data-lease-expires"));
  var leaseEl = document.getElementById("lease");
  var noteEl = document.getElementById("lease-note");
  var tokenInput = document.querySelector('input[name="lease_token"]');
  var lastActivity = Date.now();
  var lost = false;
  // renew a few times per lease, and only for a reviewer who is actually on the page
  var beatEvery = Math.max(5, Math.min(60, Math.floor(leaseSeconds / 3))) * 1000;
  var activeFor = Math.max(beatEvery * 2, Math.min(leaseSeconds * 500, 300000));

  ["keydown", "mousemove", "mousedown", "scroll", "touchstart", "focusin"].forEach(function (name) {
    window.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true });
  });

  function format(seconds) {
    var m = Math.floor(seconds / 60);
    var s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function loseLease(message) {
    if (lost) return;
    lost = true;
    noteEl.textContent = message;
    noteEl.setAttribute("role", "alert");
    noteEl.classList.remove("muted");
    document.querySelectorAll("#resolve-form button, #sample-form button, #dismiss-form button").forEach(function (b) {
      b.disabled = true;
    });
  }

  function render() {
    var left = Math.max(0, Math.round((expires - Date.now()) / 1000));
    leaseEl.textContent = format(left);
    leaseEl.classList.toggle("low", left < 120);
    if (left <= 0) loseLease("Your lease ran out: the ticket went back to the queue. Reload to see who holds it.");
  }

  function heartbeat() {
    var form = new URLSearchParams();
    if (tokenInput) form.set("lease_token", tokenInput.value);
    return fetch("/ui/tickets/" + ticketId + "/heartbeat", {
      method: "POST",
      headers: { "X-CSRF-Token": csrfToken() },
      body: form,
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (data) {
        if (response.ok) {
          expires = Date.parse(data.lease_expires_at);
          render();
        } else {
          loseLease(data.error ? data.error.message : "The lease could not be renewed.");
        }
        return data;
      });
    });
  }

  function maybeBeat() {
    if (lost || submitting) return;
    if (document.visibilityState === "visible" && Date.now() - lastActivity < activeFor) heartbeat();
  }

  render();
  setInterval(render, 1000);
  setInterval(maybeBeat, beatEvery);
  document.addEventListener("visibilitychange", maybeBeat);
  api.heartbeat = heartbeat;
})();
