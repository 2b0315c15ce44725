// Node `ws` broadcast server, the README's idiom: every message to every client, sender included.
const { WebSocketServer } = require("ws");
const port = Number(process.argv[2] || 9001);
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    wss.clients.forEach((client) => client.send(data, { binary: isBinary }));
  });
});
wss.on("listening", () => console.log(`listening on 127.0.0.1:${port}`));
