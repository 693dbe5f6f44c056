/* opsdesk live chat for agents: the /chat page and the chat panel of the ticket page.
 * Progressive enhancement: without JavaScript the forms post and the page reloads. With it, one
 * WebSocket to /chat/agent-ws keeps the queue and the open conversation live, sends replies
 * (acknowledged by opsdesk, resent with the same client id after a reconnect) and beats every
 * 15 seconds so that a closed tab goes offline for chat.
 */
(function () {
  "use strict";
  var root = document.querySelector("[data-chat-agent]");
  if (!root) { return; }
  var mode = root.getAttribute("data-chat-agent"); // "page" or "panel"
  var current = parseInt(root.getAttribute("data-conversation-id") || "0", 10) || null;
  var socket = null, retries = 0, heartbeat = null, unacked = {}, shown = {}, typingTimer = null, lastTyping = 0;
  var log = root.querySelector("[data-chat-log]");
  var stateLine = root.querySelector("[data-chat-state]");
  var typingLine = root.querySelector("[data-chat-typing]");
  var replyForm = root.querySelector("[data-chat-reply]");
  var textarea = replyForm ? replyForm.querySelector("textarea") : null;
  var errorLine = root.querySelector("[data-chat-error]");
  var presenceSelect = root.querySelector("[data-chat-presence]");
  var presenceLine = root.querySelector("[data-chat-agents-online]");
  if (log) {
    // messages the server already rendered are not shown twice when the transcript arrives
    log.querySelectorAll("[data-message-id]").forEach(function (item) { shown["m" + item.getAttribute("data-message-id")] = item; });
  }

  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return String(Date.now()) + "-" + String(Math.random()).slice(2);
  }
  function send(frame) {
    if (socket && socket.readyState === 1) { socket.send(JSON.stringify(frame)); return true; }
    return false;
  }
  function text(element, value) { if (element) { element.textContent = value; } }

  // The same sentences as the server-rendered panel (channels/ticket_panels.py).
  function describe(conv) {
    if (!conv) { return ""; }
    var who = conv.visitor_name + " <" + conv.visitor_email + ">. ";
    if (conv.status === "waiting") { return who + "The customer is waiting for an agent."; }
    if (conv.status === "active") { return who + "Live with " + (conv.agent_name || "an agent") + ": the customer reads replies in the chat."; }
    if (conv.status === "offline") { return who + "No agent was available: replies go to the customer by email."; }
    if (conv.status === "ended") { return who + "The chat has ended: replies go to the customer by email."; }
    return who;
  }

  function show(message) {
    if (!log) { return; }
    if (message.client_id && shown["c" + message.client_id]) {
      shown["c" + message.client_id].classList.remove("pending");
      if (message.id) { shown["m" + message.id] = shown["c" + message.client_id]; }
      return;
    }
    if (message.id && shown["m" + message.id]) { return; }
    var item = document.createElement("li");
    item.className = "chat-message chat-" + message.from + (message.id ? "" : " pending");
    var who = document.createElement("span");
    who.className = "chat-who";
    who.textContent = message.author || (message.from === "agent" ? "You" : "Visitor");
    item.appendChild(who);
    var body = document.createElement("span");
    body.className = "chat-body";
    body.textContent = message.body;
    item.appendChild(body);
    log.appendChild(item);
    if (message.id) { shown["m" + message.id] = item; }
    if (message.client_id) { shown["c" + message.client_id] = item; }
    log.scrollTop = log.scrollHeight;
  }

  function renderQueue(list, items) {
    var container = root.querySelector("[data-chat-list='" + list + "']");
    if (!container) { return; }
    container.innerHTML = "";
    if (!items.length) {
      var empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = list === "waiting" ? "Nobody is waiting." : "No active chats.";
      container.appendChild(empty);
      return;
    }
    items.forEach(function (conv) {
      var item = document.createElement("li");
      item.setAttribute("data-conversation", String(conv.id));
      var open = document.createElement("button");
      open.type = "button";
      open.className = "link-button chat-open";
      open.textContent = conv.visitor_name + (conv.last_message ? ": " + conv.last_message : "");
      open.setAttribute("aria-label", "Open chat with " + conv.visitor_name);
      open.addEventListener("click", function () { openConversation(conv.id); });
      item.appendChild(open);
      if (conv.status === "waiting") {
        var accept = document.createElement("button");
        accept.type = "button";
        accept.className = "button chat-accept";
        accept.textContent = "Accept";
        accept.setAttribute("aria-label", "Accept chat with " + conv.visitor_name);
        accept.addEventListener("click", function () { send({ type: "accept", conversation_id: conv.id }); openConversation(conv.id); });
        item.appendChild(accept);
      }
      if (conv.ticket_id) {
        var link = document.createElement("a");
        link.href = "/tickets/" + conv.ticket_id;
        link.textContent = "#" + conv.ticket_id;
        item.appendChild(document.createTextNode(" "));
        item.appendChild(link);
      }
      container.appendChild(item);
    });
  }

  var queue = { waiting: [], active: [] };
  function updateQueue(conv) {
    ["waiting", "active"].forEach(function (list) {
      queue[list] = queue[list].filter(function (item) { return item.id !== conv.id; });
    });
    if (conv.status === "waiting") { queue.waiting.push(conv); }
    if (conv.status === "active" && String(conv.agent_id) === root.getAttribute("data-user-id")) { queue.active.push(conv); }
    renderQueue("waiting", queue.waiting);
    renderQueue("active", queue.active);
  }

  function setConversation(conv) {
    if (!conv || conv.id !== current) { return; }
    text(stateLine, describe(conv));
    var acceptButton = root.querySelector("[data-chat-accept]");
    if (acceptButton) { acceptButton.hidden = conv.status === "active"; }
    var endButton = root.querySelector("[data-chat-end]");
    if (endButton) { endButton.hidden = !(conv.status === "active" || conv.status === "waiting"); }
    var title = root.querySelector("[data-chat-title]");
    if (title) { title.textContent = "Chat with " + conv.visitor_name; }
    var ticketLink = root.querySelector("[data-chat-ticket]");
    if (ticketLink && conv.ticket_id) { ticketLink.href = "/tickets/" + conv.ticket_id; ticketLink.textContent = "Ticket #" + conv.ticket_id; ticketLink.hidden = false; }
    var conversationBox = root.querySelector("[data-chat-conversation]");
    if (conversationBox) { conversationBox.hidden = false; }
  }

  function openConversation(id) {
    current = id;
    root.setAttribute("data-conversation-id", String(id));
    shown = {};
    if (log) { log.innerHTML = ""; }
    if (replyForm) { replyForm.setAttribute("action", "/chat/conversations/" + id + "/reply"); }
    send({ type: "open", conversation_id: id });
    if (textarea) { textarea.focus(); }
  }

  function handle(frame) {
    if (frame.type === "queue") {
      queue.waiting = frame.waiting; queue.active = frame.active;
      renderQueue("waiting", queue.waiting);
      renderQueue("active", queue.active);
      if (presenceSelect) { presenceSelect.value = frame.presence; }
      text(presenceLine, frame.agents_online + " agent(s) online for chat");
    } else if (frame.type === "transcript") {
      if (frame.conversation.id !== current) { return; }
      frame.messages.forEach(show);
      setConversation(frame.conversation);
    } else if (frame.type === "message") {
      if (frame.conversation_id === current) {
        show(frame);
        if (frame.from === "visitor") { text(typingLine, ""); }
      }
    } else if (frame.type === "status") {
      updateQueue(frame.conversation);
      setConversation(frame.conversation);
    } else if (frame.type === "presence") {
      if (frame.status && presenceSelect) { presenceSelect.value = frame.status; }
      text(presenceLine, frame.agents_online + " agent(s) online for chat");
    } else if (frame.type === "typing") {
      if (frame.conversation_id === current) {
        text(typingLine, "The customer is typing…");
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { text(typingLine, ""); }, 4000);
      }
    } else if (frame.type === "ack") {
      delete unacked[frame.client_id];
      var item = shown["c" + frame.client_id];
      if (item) { item.classList.remove("pending"); shown["m" + frame.message_id] = item; }
    } else if (frame.type === "error") {
      if (frame.ref && unacked[frame.ref] && frame.code !== "server_error") {
        var failed = shown["c" + frame.ref];
        if (failed) { failed.remove(); }
        delete unacked[frame.ref];
      }
      text(errorLine, frame.detail);
    }
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat/agent-ws";
    socket = new WebSocket(url);
    socket.onopen = function () {
      retries = 0;
      text(errorLine, "");
      send({ type: "hello", status: mode === "page" ? null : "keep" });
      if (current) { send({ type: "open", conversation_id: current }); }
      Object.keys(unacked).forEach(function (clientId) { send(unacked[clientId]); });
      clearInterval(heartbeat);
      heartbeat = setInterval(function () { send({ type: "heartbeat" }); }, 15000);
    };
    socket.onmessage = function (event) {
      try { handle(JSON.parse(event.data)); } catch (e) { /* ignore a bad frame */ }
    };
    socket.onclose = function (event) {
      clearInterval(heartbeat);
      socket = null;
      if (event.code >= 4400 && event.code < 4500) { text(errorLine, "Live chat is unavailable: " + (event.reason || "refused") + "."); return; }
      retries += 1;
      setTimeout(connect, Math.min(10000, 500 * Math.pow(2, retries)));
    };
  }

  if (replyForm && textarea) {
    var submitReply = function (event) {
      if (event) { event.preventDefault(); }
      var body = textarea.value.trim();
      text(errorLine, "");
      if (!current) { text(errorLine, "Open a conversation first."); return; }
      if (!body) { text(errorLine, "Write a reply first."); return; }
      var frame = { type: "reply", conversation_id: current, client_id: newClientId(), body: body };
      unacked[frame.client_id] = frame;
      show({ client_id: frame.client_id, from: "agent", author: "You", body: body });
      textarea.value = "";
      if (!send(frame)) { text(errorLine, "Reconnecting… your reply will be sent."); }
    };
    replyForm.addEventListener("submit", submitReply);
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { submitReply(event); return; }
      var now = Date.now();
      if (current && now - lastTyping > 2000) { lastTyping = now; send({ type: "typing", conversation_id: current }); }
    });
  }
  var acceptButton = root.querySelector("[data-chat-accept]");
  if (acceptButton) {
    acceptButton.addEventListener("click", function (event) {
      if (current && send({ type: "accept", conversation_id: current })) { event.preventDefault(); }
    });
  }
  var endButton = root.querySelector("[data-chat-end]");
  if (endButton) {
    endButton.addEventListener("click", function (event) {
      if (current && send({ type: "end", conversation_id: current })) { event.preventDefault(); }
    });
  }
  if (presenceSelect) {
    presenceSelect.addEventListener("change", function () { send({ type: "presence", status: presenceSelect.value }); });
    var presenceForm = presenceSelect.form;
    if (presenceForm) {
      presenceForm.addEventListener("submit", function (event) {
        if (send({ type: "presence", status: presenceSelect.value })) { event.preventDefault(); }
      });
    }
  }
  root.querySelectorAll("[data-open-conversation]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      openConversation(parseInt(button.getAttribute("data-open-conversation"), 10));
    });
  });
  connect();
})();
