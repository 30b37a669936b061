// A job's page, live: follows the job's events, shows where it is, hides Cancel once it can
// no longer be called back, and loads the result when it ends. EventSource opens the events
// again by itself when a proxy cuts them; the first event after that is the state then.
(function () {
  "use strict";
  const box = document.getElementById("job");
  const state = document.getElementById("job-state");
  const cancel = document.getElementById("cancel-job");
  if (!box || !state || !window.EventSource) {
    return;
  }
  const events = new EventSource(box.dataset.events);
  events.addEventListener("status", function (event) {
    const status = JSON.parse(event.data);
    state.textContent = status.text;
    state.dataset.state = status.state;
    if (cancel) {
      cancel.hidden = !status.cancellable;
    }
    if (status.finished) {
      events.close();
      // The page itself shows the result (the images, or why there are none).
      window.location.reload();
    }
  });
})();
