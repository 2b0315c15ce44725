// Node `ws` echo server, as in the package's README.
const { WebSocketServer } = require("ws");
const port = Number(process.argv[2] || 9001);
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on("listening", () => console.log(`listening on 127.0.0.1:${port}`));
