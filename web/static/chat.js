// The chat page's streaming: send the form with fetch, asking for server-sent events, and
// write the reply into the page as it arrives. Without this script the form posts and the
// page reloads with the whole reply.
"use strict";

(function () {
  const form = document.getElementById("chat-form");
  const conversation = document.getElementById("conversation");
  if (!form || !conversation || !window.fetch || !window.TextDecoder) {
    return;
  }
  const scriptError = document.getElementById("chat-script-error");
  const messageInput = form.querySelector("[name=message]");
  const imageInput = form.querySelector("[name=image]");
  const sendButton = form.querySelector("[type=submit]");
  let sending = false;

  function showError(message) {
    if (scriptError) {
      scriptError.textContent = message;
      scriptError.hidden = message === "";
    }
  }

  function addTurn(speaker, text) {
    const turn = document.createElement("div");
    turn.className = "turn " + speaker;
    turn.textContent = text;
    conversation.appendChild(turn);
    return turn;
  }

  // Every answer carries the test id; the newest is the last, and is marked done at the end.
  function newAnswer() {
    const answer = addTurn("assistant", "");
    answer.setAttribute("data-testid", "chat-answer");
    answer.dataset.done = "false";
    answer.classList.add("streaming");
    return answer;
  }

  // After the first message the conversation has an address: show it, and send the next
  // messages there so they continue it.
  function moveTo(url) {
    if (window.location.pathname !== url) {
      window.history.replaceState(null, "", url);
    }
    const hint = document.getElementById("new-conversation-hint");
    if (hint) {
      hint.hidden = true;
    }
    form.dataset.stream = url;
    form.action = url + "?csrf=" + encodeURIComponent(form.dataset.csrf || "");
  }

  // One server-sent event frame: its `event:` name and its joined `data:` lines.
  function parseFrame(frame) {
    let name = "message";
    const data = [];
    frame.split("\n").forEach(function (line) {
      if (line.startsWith("event:")) {
        name = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      }
    });
    return { name: name, data: data.join("\n") };
  }

  function finish(answer, failed) {
    answer.classList.remove("streaming");
    answer.classList.toggle("failed", failed);
    answer.dataset.done = "true";
    sending = false;
    sendButton.disabled = false;
  }

  // Handles one event of the reply to `said`; `exchange` remembers what the reply has shown.
  function handle(event, exchange) {
    const answer = exchange.answer;
    if (event.name === "conversation") {
      // The message was taken: clear the form for the next one. The address changes only once
      // the turns are kept (`done`), so a reload never lands on a conversation not yet saved.
      exchange.accepted = true;
      exchange.url = JSON.parse(event.data).url;
      messageInput.value = "";
      if (imageInput) {
        imageInput.value = "";
      }
    } else if (event.name === "text") {
      answer.textContent += JSON.parse(event.data);
      conversation.scrollTop = conversation.scrollHeight;
    } else if (event.name === "done") {
      const reason = JSON.parse(event.data).stop_reason;
      if (reason === "max_tokens") {
        answer.textContent += " …(the reply reached its length limit)";
      } else if (reason === "filtered") {
        answer.textContent += " …(the reply was stopped by a content filter)";
      }
      if (exchange.url) {
        moveTo(exchange.url);
      }
      finish(answer, false);
    } else if (event.name === "error") {
      showError(JSON.parse(event.data).message);
      if (answer.textContent !== "") {
        // The model failed part of the way: what came stays readable, marked as incomplete.
        answer.textContent += " …(cut off)";
      }
      if (!exchange.accepted) {
        // Refused before anything was kept: take the message back out of the page.
        exchange.userTurn.remove();
        answer.remove();
      } else if (messageInput.value === "") {
        // Nothing of this exchange was kept: offer the message again.
        messageInput.value = exchange.said;
      }
      finish(answer, true);
    }
  }

  function refusedOutright(exchange, status) {
    exchange.userTurn.remove();
    exchange.answer.remove();
    sending = false;
    sendButton.disabled = false;
    showError(
      status === 403 || status === 401
        ? "This page has expired (you may have been signed out). Reload it and send the message again."
        : "The message could not be sent (the server answered " + status + "). Try again in a moment.",
    );
  }

  async function send() {
    const body = new FormData(form);
    const said = messageInput.value.trim();
    const exchange = { said: said, userTurn: addTurn("user", said), answer: newAnswer(), accepted: false, url: null };
    const response = await fetch(form.dataset.stream, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "text/event-stream", "X-CSRF-Token": form.dataset.csrf || "" },
    });
    const type = response.headers.get("content-type") || "";
    if (!type.startsWith("text/event-stream") || !response.body) {
      // Not an answer at all: an expired form token, a sign-in that ended, a proxy's error page.
      refusedOutright(exchange, response.status);
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        break;
      }
      // The server separates fields with "\n" and events with a blank line.
      buffered += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        handle(parseFrame(buffered.slice(0, end)), exchange);
        buffered = buffered.slice(end + 2);
      }
    }
    if (exchange.answer.dataset.done !== "true") {
      showError("The connection closed before the reply finished. Reload the page to see what was kept.");
      finish(exchange.answer, true);
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (sending) {
      return;
    }
    sending = true;
    sendButton.disabled = true;
    showError("");
    send().catch(function () {
      showError("The message could not be sent. Check the connection and try again.");
      conversation.querySelectorAll(".streaming").forEach(function (answer) {
        finish(answer, true);
      });
      sending = false;
      sendButton.disabled = false;
    });
  });

  // Enter sends, Shift+Enter makes a new line, as in most chat windows.
  messageInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
