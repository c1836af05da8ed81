/* Sigma dashboard: follows the UI-sync stream (GET /app/events, Server-Sent Events).
   navigate -> switch page (with filter, sort, highlights); filter -> positions table preset and
   sort; highlight -> style and pulse elements by id. The last event id is kept per tab, so a page
   switch resumes the stream after it; EventSource itself sends Last-Event-ID on reconnects.
   All text from events is set with textContent (never parsed as HTML). */
(function () {
  "use strict";
  var page = document.body.dataset.page || "";
  var session = document.body.dataset.session || "default";
  var key = "sigma.lastEventId." + session;
  var highlights = {};
  window.__sigmaEvents = [];

  function qs() { return new URLSearchParams(window.location.search); }

  function applyHighlights() {
    Object.keys(highlights).forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) return;
      var h = highlights[id];
      el.classList.forEach(function (c) { if (c.indexOf("hl-") === 0) el.classList.remove(c); });
      el.classList.add("hl", "hl-" + h.style);
      el.classList.toggle("pulse", !!h.pulse);
      if (h.reason) el.title = h.reason;
    });
  }

  function banner(text) {
    var b = document.getElementById("ai_banner");
    if (!b || !text) return;
    b.textContent = text;
    b.hidden = false;
  }

  function setSelect(id, value) {
    var sel = document.getElementById(id);
    if (!sel || value == null) return;
    if (sel.tagName === "SELECT" && !Array.prototype.some.call(sel.options, function (o) { return o.value === value; })) {
      var opt = document.createElement("option");
      opt.value = value; opt.textContent = value;
      sel.appendChild(opt);
    }
    sel.value = value;
  }

  function applyFilter(preset, sort) {
    setSelect("preset", preset || "all");
    setSelect("sort", sort ? sort.field : "");
    setSelect("order", sort ? sort.order : "desc");
    var form = document.getElementById("table_form");
    if (form && window.htmx) window.htmx.trigger(form, "submit");
  }

  function go(target, params) {
    var p = new URLSearchParams();
    Object.keys(params).forEach(function (k) { if (params[k]) p.set(k, params[k]); });
    var q = p.toString();
    window.location.href = "/app/" + target + (q ? "?" + q : "");
  }

  function handle(kind, data) {
    if (kind === "navigate") {
      banner(data.reason);
      (data.highlight || []).forEach(function (id) { highlights[id] = {style: "info", pulse: true}; });
      if (data.page !== page || data.session_id) {  // a modeling session to open: load its page
        go(data.page, {preset: data.filter, sort: data.sort && data.sort.field, order: data.sort && data.sort.order,
                       hl: (data.highlight || []).join(","), open: data.session_id});
        return;
      }
      if (data.filter || data.sort) applyFilter(data.filter, data.sort);
      applyHighlights();
    } else if (kind === "filter") {
      banner(data.reason);
      if (page !== "portfolio") {
        go("portfolio", {preset: data.preset, sort: data.sort && data.sort.field, order: data.sort && data.sort.order});
        return;
      }
      applyFilter(data.preset, data.sort);
    } else if (kind === "highlight") {
      (data.elements || []).forEach(function (e) { highlights[e.id] = e; });
      applyHighlights();
    }
  }

  function connect() {
    var after = window.sessionStorage.getItem(key);
    var es = new EventSource("/app/events" + (after ? "?after=" + encodeURIComponent(after) : ""));
    var status = document.getElementById("sync_status");
    es.addEventListener("ready", function () { if (status) { status.className = "on"; status.textContent = "sync on"; } });
    ["navigate", "filter", "highlight"].forEach(function (kind) {
      es.addEventListener(kind, function (ev) {
        window.sessionStorage.setItem(key, ev.lastEventId);
        var data = JSON.parse(ev.data);
        window.__sigmaEvents.push({id: Number(ev.lastEventId), kind: kind, t: Date.now()});
        handle(kind, data);
      });
    });
    es.addEventListener("logout", function () {
      es.close();
      window.location.href = "/app/login";
    });
    es.onerror = function () { if (status) { status.className = "off"; status.textContent = "sync off"; } };
    window.__sigmaStream = es;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var hl = qs().get("hl");
    if (hl) hl.split(",").forEach(function (id) { if (id) highlights[id] = {style: "info", pulse: true}; });
    document.body.addEventListener("htmx:afterSwap", applyHighlights);
    applyHighlights();
    if (page) connect();
  });
})();
