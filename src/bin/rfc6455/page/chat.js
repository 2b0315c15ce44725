// The chat page: connects back to the server that served it, shows every broadcast message with
// the time it arrived, and reconnects with an exponential back-off after a drop.
"use strict";

const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
const log = document.getElementById("log");
const statusLine = document.getElementById("status");
const form = document.getElementById("composer");
const input = document.getElementById("message");
const sendButton = document.getElementById("send");

let socket = null;
let attempt = 0;

function setState(state, text) {
  statusLine.dataset.state = state;
  document.body.dataset.state = state;
  statusLine.textContent = text;
  const open = state === "open";
  input.disabled = !open;
  sendButton.disabled = !open;
  if (open) input.focus();
}

function addLine(text, kind) {
  const item = document.createElement("li");
  item.className = kind;
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const body = document.createElement("span");
  body.textContent = text; // never innerHTML: messages come from anyone
  item.append(time, body);
  log.append(item);
  item.scrollIntoView({ block: "end" });
}

function connect() {
  setState("connecting", attempt ? "Reconnecting…" : "Connecting…");
  socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    if (attempt) addLine("Reconnected.", "notice");
    attempt = 0;
    setState("open", "Connected");
  };
  socket.onmessage = (event) => {
    const text = typeof event.data === "string" ? event.data : `[${event.data.byteLength} bytes of binary]`;
    addLine(text, "message");
  };
  socket.onclose = (event) => {
    // 0.5 s, 1 s, 2 s … up to 10 s, with jitter so that many tabs do not return at once.
    const delay = Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt += 1;
    const why = event.code === 1001 ? "server going away" : `code ${event.code}`;
    setState("closed", `Disconnected (${why}). Retrying in ${(delay / 1000).toFixed(1)} s`);
    if (attempt === 1) addLine(`Disconnected (${why}).`, "notice");
    setTimeout(connect, delay);
  };
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(text);
  input.value = "";
});

connect();
