// Progressive enhancement for the workspace (everything works without it).
// - Attendance selects save as soon as they change (their Save buttons are hidden).
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  document.querySelectorAll("form.attendance select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit ? select.form.requestSubmit() : select.form.submit(); });
  });
})();
