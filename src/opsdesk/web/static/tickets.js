// opsdesk ticket pages: small progressive enhancements. Every form works without this file.
(function () {
  "use strict";

  // Bulk bar: "select all on this page" and a live count of the selected tickets.
  function setUpBulk() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name="ids"][form="bulk-form"]'));
    var all = document.querySelector("input.select-all");
    var label = form.querySelector(".bulk-selected");
    function update() {
      var chosen = boxes.filter(function (box) { return box.checked; }).length;
      if (all) {
        all.checked = chosen > 0 && chosen === boxes.length;
        all.indeterminate = chosen > 0 && chosen < boxes.length;
      }
      if (label) {
        label.textContent = chosen === 0 ? "Select tickets below, then choose what to change."
          : chosen + (chosen === 1 ? " ticket selected." : " tickets selected.");
      }
    }
    if (all) {
      all.hidden = false;
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
        update();
      });
    }
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    update();
  }

  // View editor: a live count of the tickets the filter matches, while it is being edited.
  var FILTER_KEYS = ["status", "assignee", "group", "tag", "priority", "channel", "tier", "q", "solved_within_days"];
  function setUpPreview() {
    var form = document.getElementById("view-form");
    var output = document.getElementById("preview-count");
    if (!form || !output) return;
    var timer = null;
    var latest = 0;
    function query() {
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, key) {
        if (FILTER_KEYS.indexOf(key) < 0 || value === "") return;
        if (key === "tag") {
          String(value).split(/[\s,]+/).forEach(function (tag) { if (tag) params.append("tag", tag); });
        } else {
          params.append(key, value);
        }
      });
      return params.toString();
    }
    function refresh() {
      var number = ++latest;
      fetch("/api/v1/views/preview?" + query(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (answer) { return answer.json().then(function (body) { return [answer.ok, body]; }); })
        .then(function (result) {
          if (number !== latest) return;
          var ok = result[0], body = result[1];
          if (ok) {
            output.textContent = body.count === 1 ? "1 ticket matches" : body.count + " tickets match";
            output.classList.remove("error");
          } else {
            var errors = (body.errors || []).map(function (item) { return item.field + ": " + item.message; });
            output.textContent = "Not valid: " + (errors.length ? errors.join("; ") : body.detail);
            output.classList.add("error");
          }
        })
        .catch(function () { if (number === latest) output.textContent = "Count unavailable"; });
    }
    function soon() {
      if (timer) clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    }
    form.addEventListener("input", soon);
    form.addEventListener("change", soon);
  }

  // Forms that destroy something ask first (data-confirm="…").
  function setUpConfirm() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpConfirm();
    setUpBulk();
    setUpPreview();
  });
})();
