/* Alliance check-in: progressive enhancement of a form that already works without JavaScript.
 *
 * - On phones (narrow screens): one question per screen, a progress bar ("3 of 9"), Back and Next
 *   without losing answers (the browser's back gesture steps back too).
 * - Everywhere: the draft is saved as the client goes (POST to the relative "draft/" address with
 *   the form's CSRF token), so they can close the page and resume with the same link.
 * - A critical answer (e.g. PHQ-9 item 9 above 0) reveals the practice's crisis resources at once.
 *
 * No dependencies, no inline script (the page's CSP is script-src 'self'), nothing from the internet.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-checkin]");
  var form = document.getElementById("checkin-form");
  if (!root || !form) return;

  var steps = Array.prototype.slice.call(form.querySelectorAll("[data-step]"));
  var finalStep = form.querySelector("[data-final]");
  var sections = Array.prototype.slice.call(form.querySelectorAll("[data-section]"));
  var intro = root.querySelector("[data-intro]");
  var progress = root.querySelector("[data-progress]");
  var progressCurrent = root.querySelector("[data-progress-current]");
  var progressBar = root.querySelector("[data-progress-bar]");
  var progressCount = root.querySelector("[data-progress-count]");
  var progressDone = root.querySelector("[data-progress-done]");
  var nav = form.querySelector("[data-step-nav]");
  var backButton = form.querySelector("[data-back]");
  var nextButton = form.querySelector("[data-next]");
  var status = form.querySelector("[data-autosave-status]");
  var errorSummary = root.querySelector("[data-error-summary]");
  var all = steps.concat(finalStep ? [finalStep] : []);
  var phone = window.matchMedia ? window.matchMedia("(max-width: 40rem)") : null;
  var current = 0;
  var stepping = false;
  var submitting = false;

  /* ---------------------------------------------------------------- answers */
  function isAnswered(step) {
    var inputs = step.querySelectorAll("input, textarea");
    for (var i = 0; i < inputs.length; i++) {
      var el = inputs[i];
      if (el.type === "radio" || el.type === "checkbox") {
        if (el.checked) return true;
      } else if (el.value.trim() !== "") {
        return true;
      }
    }
    return false;
  }

  function firstInput(step) {
    return step.querySelector("input:checked, input, textarea");
  }

  function hint(step, show) {
    var el = step.querySelector("[data-step-hint]");
    if (!el && show) {
      el = document.createElement("p");
      el.className = "step-hint";
      el.setAttribute("data-step-hint", "");
      el.setAttribute("role", "alert");
      el.textContent = "Please choose an answer to go on.";
      var legend = step.querySelector("legend");
      if (legend && legend.nextSibling) step.insertBefore(el, legend.nextSibling);
      else step.insertBefore(el, step.firstChild);
    }
    if (el) el.hidden = !show;
  }

  /* ---------------------------------------------------------------- steps */
  function sectionOf(el) {
    for (var i = 0; i < sections.length; i++) {
      if (sections[i].contains(el)) return sections[i];
    }
    return null;
  }

  function show(index, options) {
    options = options || {};
    current = Math.max(0, Math.min(index, all.length - 1));
    var active = all[current];
    var activeSection = sectionOf(active);
    all.forEach(function (step) { step.hidden = step !== active; });
    sections.forEach(function (section) { section.hidden = section !== activeSection; });
    if (intro) intro.hidden = current !== 0;
    if (errorSummary) errorSummary.hidden = current !== 0 && !options.keepErrors;
    var total = steps.length;
    var shown = Math.min(current + 1, total);
    if (progressCurrent) progressCurrent.textContent = String(shown);
    if (progressBar) progressBar.value = active === finalStep ? total : shown;
    if (progressCount) progressCount.hidden = active === finalStep;
    if (progressDone) progressDone.hidden = active !== finalStep;
    if (progress) progress.hidden = false;
    backButton.disabled = current === 0;
    nextButton.hidden = active === finalStep;
    if (active === finalStep) listMissing();
    if (options.push && window.history && history.pushState) {
      history.pushState({ checkinStep: current }, "", window.location.href);
    }
    if (options.focus !== false) {
      window.scrollTo(0, 0);
      active.focus({ preventScroll: true });
    }
  }

  function listMissing() {
    var out = finalStep.querySelector("[data-missing]");
    if (!out) return;
    var missing = steps.filter(function (s) { return s.hasAttribute("data-required") && !isAnswered(s); });
    out.hidden = missing.length === 0;
    if (missing.length) {
      out.textContent = (missing.length === 1 ? "One question still needs an answer" : missing.length + " questions still need an answer") +
        ". You can send once every question is answered, or save and finish later.";
    }
  }

  function next() {
    var step = all[current];
    if (step.hasAttribute("data-required") && !isAnswered(step)) {
      hint(step, true);
      var input = firstInput(step);
      if (input) input.focus();
      return;
    }
    hint(step, false);
    save();
    show(current + 1, { push: true });
  }

  function back() {
    if (current === 0) return;
    if (window.history && history.state && typeof history.state.checkinStep === "number") {
      history.back();  // popstate shows the previous step and keeps the browser's history in step
    } else {
      show(current - 1);
    }
  }

  function startIndex() {
    for (var i = 0; i < steps.length; i++) {
      if (steps[i].classList.contains("has-error")) return i;
    }
    var anyAnswered = steps.some(isAnswered);
    if (!anyAnswered) return 0;
    for (var j = 0; j < steps.length; j++) {
      if (steps[j].hasAttribute("data-required") && !isAnswered(steps[j])) return j;
    }
    return all.length - 1;
  }

  function enterStepping() {
    stepping = true;
    root.classList.add("stepping");
    nav.hidden = false;
    if (history.replaceState) history.replaceState({ checkinStep: startIndex() }, "", window.location.href);
    show(startIndex(), { focus: !!errorSummary, keepErrors: true });
  }

  function leaveStepping() {
    stepping = false;
    root.classList.remove("stepping");
    nav.hidden = true;
    if (progress) progress.hidden = true;
    if (intro) intro.hidden = false;
    if (errorSummary) errorSummary.hidden = false;
    all.forEach(function (step) { step.hidden = false; });
    sections.forEach(function (section) { section.hidden = false; });
  }

  function applyMode() {
    if (phone && phone.matches) {
      if (!stepping) enterStepping();
    } else if (stepping) {
      leaveStepping();
    }
  }

  /* ---------------------------------------------------------------- safety */
  var announcer = document.createElement("p");
  announcer.className = "visually-hidden";
  announcer.setAttribute("role", "status");
  root.appendChild(announcer);

  function revealCrisis(input) {
    var fieldset = input.closest("[data-step]");
    if (!fieldset) return;
    var panel = document.getElementById("crisis-" + fieldset.id);
    if (panel && panel.hidden) {
      panel.hidden = false;
      var calm = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      panel.scrollIntoView({ block: "nearest", behavior: calm ? "auto" : "smooth" });
      announcer.textContent = "Support contacts are shown below this question. You can carry on with the check-in when you are ready.";
    }
  }

  /* ---------------------------------------------------------------- autosave */
  var saveTimer = null;
  var lastSaved = null;
  var draftUrl = new URL(form.getAttribute("data-draft-url") || "draft/", window.location.href).toString();

  function formBody() {
    var data = new FormData(form);
    data.delete("action");
    return new URLSearchParams(data);
  }

  function say(text) {
    if (status && status.textContent !== text) status.textContent = text;
  }

  function save() {
    if (submitting || !window.fetch) return;
    clearTimeout(saveTimer);
    var body = formBody();
    var key = body.toString();
    if (key === lastSaved) return;
    fetch(draftUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      keepalive: true,  // a save sent as the page closes still arrives
      headers: { "Accept": "application/json", "X-Requested-With": "fetch" },
    }).then(function (response) {
      if (response.ok) {
        lastSaved = key;
        say("Your answers are saved as you go. You can close this page and come back with the same link.");
      } else if (response.status === 403) {
        say("We couldn't save just now. Your answers are still on this page; reload it to keep saving.");
      } else if (response.status === 409) {
        say("This check-in is closed. Reload the page to see why.");
      } else if (response.status === 400) {
        say("Some answers could not be saved. Please check them before sending.");
      }
    }).catch(function () {
      say("You seem to be offline. Your answers are still on this page; we will save them when you are back online.");
    });
  }

  function saveSoon(delay) {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, delay);
  }

  /* ---------------------------------------------------------------- wiring */
  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("input[data-critical]") && target.checked) revealCrisis(target);
    var step = target.closest("[data-step]");
    if (step) hint(step, false);
    if (stepping && all[current] === finalStep) listMissing();
    saveSoon(600);
  });
  form.addEventListener("input", function (event) {
    if (event.target.tagName === "TEXTAREA" || event.target.type === "text") saveSoon(1500);
  });
  form.addEventListener("keydown", function (event) {
    // In step mode, Enter in a text box goes to the next question instead of sending the form.
    if (stepping && event.key === "Enter" && event.target.tagName === "INPUT" && all[current] !== finalStep) {
      event.preventDefault();
      next();
    }
  });
  form.addEventListener("submit", function () {
    submitting = true;
    clearTimeout(saveTimer);
  });
  nextButton.addEventListener("click", next);
  backButton.addEventListener("click", back);
  window.addEventListener("popstate", function (event) {
    if (stepping && event.state && typeof event.state.checkinStep === "number") show(event.state.checkinStep);
  });
  window.addEventListener("pagehide", function () { if (!submitting) save(); });

  if (errorSummary) {
    errorSummary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      if (!link || !stepping) return;
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (!target) return;
      for (var i = 0; i < all.length; i++) {
        if (all[i] === target || all[i].contains(target) || target.contains(all[i])) {
          event.preventDefault();
          show(i, { push: true, keepErrors: true });
          return;
        }
      }
    });
  }

  if (phone && phone.addEventListener) phone.addEventListener("change", applyMode);
  lastSaved = formBody().toString();
  applyMode();
  if (errorSummary && !stepping) errorSummary.focus();
})();
