// Bulwark console script: live queue refresh, keyboard shortcuts, bulk selection, confirm
// dialogs. Plain JavaScript, no dependencies, loaded as a file (the content security policy
// forbids inline scripts and eval). Every action it takes is an ordinary form POST carrying
// the session's CSRF token; the server decides what is allowed.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var pollMs = parseInt((document.querySelector('meta[name="poll-ms"]') || {}).content || "5000", 10);

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // ---- confirm dialogs -------------------------------------------------------------------
  var confirmDialog = $("#confirm-dialog");
  function confirmThen(message, proceed) {
    if (!confirmDialog || typeof confirmDialog.showModal !== "function") {
      if (window.confirm(message)) proceed();
      return;
    }
    $(".confirm-text", confirmDialog).textContent = message;
    confirmDialog.returnValue = "";
    confirmDialog.onclose = function () {
      if (confirmDialog.returnValue === "ok") proceed();
    };
    confirmDialog.showModal();
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var submitter = ev.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (!message || form.dataset.confirmed === "1") return;
    ev.preventDefault();
    confirmThen(message, function () {
      form.dataset.confirmed = "1";
      if (submitter && form.requestSubmit) form.requestSubmit(submitter); else form.submit();
      form.dataset.confirmed = "";
    });
  }, true);

  // ---- small behaviours --------------------------------------------------------------------
  $all("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () { if (s.form.requestSubmit) s.form.requestSubmit(); else s.form.submit(); });
  });
  $all("[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var el = document.getElementById(b.getAttribute("data-copy"));
      if (el && navigator.clipboard) navigator.clipboard.writeText(el.textContent).then(function () { b.textContent = "Copied"; });
    });
  });
  $all("[data-open]").forEach(function (b) {
    b.addEventListener("click", function () { var d = document.getElementById(b.getAttribute("data-open")); if (d) d.showModal(); });
  });
  $all("dialog [data-close]").forEach(function (b) {
    b.addEventListener("click", function () { b.closest("dialog").close(); });
  });
  // Resolve reasons: offer only those that fit the chosen determination.
  $all("select[data-reasons]").forEach(function (det) {
    var reason = document.getElementById(det.getAttribute("data-reasons"));
    if (!reason) return;
    function filter() {
      $all("option[data-dets]", reason).forEach(function (o) {
        var fits = !det.value || o.getAttribute("data-dets").split(" ").indexOf(det.value) >= 0;
        o.hidden = !fits; o.disabled = !fits;
        if (!fits && o.selected) reason.value = "";
      });
    }
    det.addEventListener("change", filter);
    filter();
  });
  // @mentions in comments (text is already escaped by the server; this only wraps it).
  $all("[data-mentions]").forEach(function (el) {
    var text = el.textContent;
    if (text.indexOf("@") < 0) return;
    el.textContent = "";
    text.split(/(@[a-zA-Z0-9_.\-]+)/).forEach(function (part) {
      if (/^@[a-zA-Z0-9_.\-]+$/.test(part)) {
        var s = document.createElement("span"); s.className = "mention"; s.textContent = part; el.appendChild(s);
      } else el.appendChild(document.createTextNode(part));
    });
  });
  // Playbook editor: a validation error's line selects that line of the text.
  $all("a[data-line]").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      var src = $("#source");
      if (!src) return;
      var n = parseInt(a.getAttribute("data-line"), 10), lines = src.value.split("\n"), start = 0;
      for (var i = 0; i < n - 1 && i < lines.length; i++) start += lines[i].length + 1;
      var end = start + (lines[n - 1] || "").length;
      src.focus();
      src.setSelectionRange(start, end);
      var lineHeight = parseFloat(getComputedStyle(src).lineHeight) || 18;
      src.scrollTop = Math.max(0, (n - 5) * lineHeight);
    });
  });
  // Whole rows open their record (clicks on links, buttons and inputs keep their own meaning).
  document.addEventListener("click", function (ev) {
    var row = ev.target.closest("tr[data-href]");
    if (!row || ev.target.closest("a, button, input, select, label, form")) return;
    window.location = row.getAttribute("data-href");
  });

  // ---- bulk selection ----------------------------------------------------------------------
  var bulk = $("#bulk");
  var body = $("#queue-body");
  var lastChecked = null;
  function boxes() { return $all('input[type="checkbox"][name="id"]', body || document); }
  function refreshBulk() {
    if (!bulk) return;
    var n = boxes().filter(function (b) { return b.checked; }).length;
    bulk.hidden = n === 0;
    $("#bulk-count").textContent = n + " selected";
    boxes().forEach(function (b) { b.closest("tr").classList.toggle("selected", b.checked); });
    var all = $("#select-all");
    if (all) { all.checked = n > 0 && n === boxes().length; all.indeterminate = n > 0 && n < boxes().length; }
  }
  if (body) {
    body.addEventListener("click", function (ev) {
      var b = ev.target;
      if (!(b instanceof HTMLInputElement) || b.name !== "id") return;
      if (ev.shiftKey && lastChecked) {
        var list = boxes(), i = list.indexOf(lastChecked), j = list.indexOf(b);
        list.slice(Math.min(i, j), Math.max(i, j) + 1).forEach(function (x) { x.checked = b.checked; });
      }
      lastChecked = b;
      refreshBulk();
    });
  }
  var selectAll = $("#select-all");
  if (selectAll) selectAll.addEventListener("change", function () {
    boxes().forEach(function (b) { b.checked = selectAll.checked; });
    refreshBulk();
  });

  // ---- keyboard shortcuts --------------------------------------------------------------------
  var focused = -1;
  function rows() { return $all("tr.alert-row", body || document); }
  function focusRow(i) {
    var list = rows();
    if (!list.length) return;
    focused = Math.max(0, Math.min(i, list.length - 1));
    list.forEach(function (r, k) { r.classList.toggle("focused", k === focused); });
    list[focused].scrollIntoView({ block: "nearest" });
  }
  function current() { var list = rows(); return focused >= 0 && focused < list.length ? list[focused] : null; }
  function post(action, fields) {
    var f = document.createElement("form");
    f.method = "post"; f.action = action; f.hidden = true;
    var all = Object.assign({ _csrf: csrf }, fields || {});
    Object.keys(all).forEach(function (k) {
      var i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = all[k]; f.appendChild(i);
    });
    document.body.appendChild(f);
    f.submit();
  }
  var pendingG = false;
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
      if (ev.key === "Escape") t.blur();
      return;
    }
    if ($("dialog[open]")) return;
    var k = ev.key;
    if (pendingG) {
      pendingG = false;
      var go = { q: "/alerts", i: "/incidents", d: "/dashboard", a: "/approvals", p: "/playbooks", o: "/observables" }[k];
      if (go) { window.location = go; ev.preventDefault(); }
      return;
    }
    var page = document.body.getAttribute("data-page");
    var onQueue = !!body;
    var alertPage = !!$("#resolve-form") || !!$("#claim-form");
    if (k === "g") { pendingG = true; setTimeout(function () { pendingG = false; }, 1200); return; }
    if (k === "?") { var h = $("#help-dialog"); if (h) h.showModal(); ev.preventDefault(); return; }
    if (k === "/") { var s = $("#search"); if (s) { s.focus(); s.select(); ev.preventDefault(); } return; }
    if (k === "Escape") { focusRow(-1); rows().forEach(function (r) { r.classList.remove("focused"); }); focused = -1; return; }
    if (k === "j" || k === "ArrowDown" && onQueue) { focusRow(focused + 1); ev.preventDefault(); return; }
    if (k === "k" || k === "ArrowUp" && onQueue) { focusRow(focused - 1); ev.preventDefault(); return; }
    if ((k === "Enter" || k === "o") && current()) { window.location = current().getAttribute("data-href"); ev.preventDefault(); return; }
    if (k === "x" && current()) {
      var box = $('input[name="id"]', current());
      if (box) { box.checked = !box.checked; lastChecked = box; refreshBulk(); }
      return;
    }
    if (k === "a") {
      if (onQueue && current() && bulk) {
        post("/alerts/" + current().getAttribute("data-id") + "/claim", { back: window.location.pathname + window.location.search });
      } else if (alertPage) {
        var cf = $("#claim-form"); var btn = cf && $("button", cf);
        if (btn && !btn.disabled) cf.submit();
      }
      ev.preventDefault();
      return;
    }
    if (k === "r") {
      if (onQueue && bulk) {
        if (!boxes().some(function (b) { return b.checked; }) && current()) {
          var cb = $('input[name="id"]', current()); if (cb) { cb.checked = true; refreshBulk(); }
        }
        if (boxes().some(function (b) { return b.checked; })) { var d = $("#resolve-dialog"); if (d) d.showModal(); }
      } else if (alertPage) {
        var det = $("#determination"); if (det) { det.scrollIntoView({ block: "center" }); det.focus(); }
      }
      ev.preventDefault();
      return;
    }
    if (k === "e" && page === "alerts" && !onQueue) {
      var ef = $("#escalate-form"); if (ef) confirmThen("Escalate this alert?", function () { ef.submit(); });
    }
  });
  $all("[data-help]").forEach(function (b) { b.addEventListener("click", function () { $("#help-dialog").showModal(); }); });

  // ---- live queue refresh ------------------------------------------------------------------
  var live = $("#live");
  if (live && body) {
    var url = live.getAttribute("data-poll");
    var counter = $("#new-count");
    var added = 0;
    var busy = false;
    var baseTitle = document.title;
    function topId() { var r = $("tr.alert-row", body); return r ? r.getAttribute("data-id") : null; }
    function tick() {
      if (busy || document.hidden) return;
      var after = topId();
      if (!after) { if (!$("tr.alert-row", body)) { after = "00000000-0000-0000-0000-000000000000"; } }
      busy = true;
      fetch(url + "&after=" + encodeURIComponent(after), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 401) { window.location = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("session ended"); }
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (data) {
          live.classList.remove("paused");
          if (!data.count) return;
          body.insertAdjacentHTML("afterbegin", data.html);
          var empty = $("p.empty"); if (empty) empty.remove();
          added += data.count;
          var shown = $("#shown-count");
          if (shown) shown.textContent = String(parseInt(shown.textContent, 10) + data.count);
          counter.hidden = false;
          counter.textContent = added + " new";
          document.title = "(" + added + ") " + baseTitle;
          if (focused >= 0) focusRow(focused + data.count);
        })
        .catch(function () { live.classList.add("paused"); })
        .then(function () { busy = false; });
    }
    setInterval(tick, Math.max(1000, pollMs));
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { document.title = baseTitle; added = 0; counter.hidden = true; tick(); } });
  }
})();
