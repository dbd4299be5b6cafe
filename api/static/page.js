// Keyboard use of the search page and the article page; everything works without it.
(function () {
  "use strict";
  const box = document.getElementById("q");
  const form = box && box.form;

  // Changing the mode or the number of results re-runs the current search.
  if (form) {
    for (const id of ["mode", "k"]) {
      const control = document.getElementById(id);
      if (control) control.addEventListener("change", () => { if (box.value.trim()) form.submit(); });
    }
  }

  // On an article page, bring the paragraph that was hit to the middle of the screen.
  const hit = document.querySelector(".para.hit");
  if (hit) {
    hit.scrollIntoView({ block: "center" });
    hit.focus({ preventScroll: true });
  }

  const links = () => Array.from(document.querySelectorAll(".hit-link"));
  function move(step) {
    const all = links();
    if (!all.length) return;
    const at = all.indexOf(document.activeElement);
    const next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(Math.max(at + step, 0), all.length - 1);
    all[next].focus();
    all[next].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const typing = event.target.matches("input, select, textarea");
    if (event.key === "/" && !typing && box) {
      event.preventDefault();
      box.focus();
      box.select();
    } else if (event.key === "ArrowDown" && (!typing || event.target === box)) {
      if (links().length) { event.preventDefault(); move(1); }
    } else if (event.key === "ArrowUp" && !typing) {
      const all = links();
      if (all.indexOf(document.activeElement) === 0 && box) { event.preventDefault(); box.focus(); }
      else if (all.length) { event.preventDefault(); move(-1); }
    } else if ((event.key === "j" || event.key === "k") && !typing) {
      move(event.key === "j" ? 1 : -1);
    } else if (event.key === "Escape") {
      if (typing && event.target === box) box.blur();
      else if (!box) { const back = document.querySelector(".back"); if (back) window.location.href = back.href; }
    }
  });
})();
