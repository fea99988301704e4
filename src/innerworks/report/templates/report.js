/* innerworks report: draw each figure from its embedded JSON; switch variants with the selectors.
   Only the shown variant of a group is drawn (a hidden div has no size, and each 3-D scene holds a WebGL context,
   of which a browser allows few), so switching purges the old plot and draws the new one. */
(function () {
  "use strict";
  var CONFIG = { responsive: true, displaylogo: false, scrollZoom: false };

  function note(div, message) {
    var box = document.createElement("div");
    box.className = "fig-error";
    box.textContent = message;
    div.replaceWith(box);
  }

  function draw(div) {
    if (!div || div.dataset.rendered === "1" || div.dataset.rendered === "pending") { return; }
    var fig;
    try {
      fig = JSON.parse(document.getElementById(div.dataset.src).textContent);
    } catch (e) {
      note(div, "This figure's data could not be read: " + e.message);
      return;
    }
    if (typeof Plotly === "undefined") {
      note(div, "plotly.js did not load, so this figure cannot be drawn.");
      return;
    }
    var layout = Object.assign({}, fig.layout || {});
    delete layout.width;  // fill the page width; the height the figure asked for is kept
    // An explicit height: a responsive plot without one takes its container's height, and ours has none.
    // 3-D scenes get more room to rotate.
    if (!layout.height) { layout.height = div.classList.contains("gl3d") ? 620 : 450; }
    div.dataset.rendered = "pending";
    Plotly.newPlot(div, fig.data || [], layout, Object.assign({}, CONFIG, fig.config || {})).then(
      function () { div.dataset.rendered = "1"; },
      function (e) { note(div, "This figure could not be drawn: " + (e && e.message ? e.message : e)); }
    );
  }

  function show(groupId, variantId) {
    var group = document.getElementById(groupId);
    if (!group) { return; }
    var variants = group.querySelectorAll(".fig-variant");
    for (var i = 0; i < variants.length; i++) {
      var v = variants[i];
      var active = v.id === variantId;
      if (!active && !v.hidden) {
        var old = v.querySelector(".plot");
        if (old && old.dataset.rendered === "1") { Plotly.purge(old); old.dataset.rendered = ""; }
      }
      v.hidden = !active;
    }
    var sel = group.querySelector("select.fig-select");
    if (sel && sel.value !== variantId) { sel.value = variantId; }
    var target = document.getElementById(variantId);
    if (target) { draw(target.querySelector(".plot")); }
  }

  function followHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    if (!id) { return; }
    var el = document.getElementById(id);
    if (!el || !el.classList.contains("fig-variant")) { return; }
    var group = el.closest(".fig-group");
    show(group.id, id);
    group.scrollIntoView();
    group.classList.add("flash");
    setTimeout(function () { group.classList.remove("flash"); }, 1500);
  }

  function init() {
    var selects = document.querySelectorAll("select.fig-select");
    for (var i = 0; i < selects.length; i++) {
      selects[i].addEventListener("change", function (ev) { show(ev.target.dataset.group, ev.target.value); });
    }
    var first = document.querySelectorAll(".fig-variant:not([hidden]) .plot");
    for (var j = 0; j < first.length; j++) { draw(first[j]); }
    window.addEventListener("hashchange", followHash);
    followHash();
  }

  window.innerworksReport = { show: show, draw: draw };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
