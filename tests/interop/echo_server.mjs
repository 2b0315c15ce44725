// An echo server on Node's ws, for tests/interop/run.sh.
//
// Listens on 127.0.0.1 on a free port and prints the port as its first line of standard output.
// permessage-deflate is enabled (ws leaves it off by default), with ws's defaults: context
// takeover both ways, messages under 1 KiB sent uncompressed. Paths:
//
//     /          every text or binary message is sent back as the same type
//     /info      first sends one text message: the extensions it agreed to ("none" without one),
//                then echoes
//     /refuse    refuses the upgrade with 403
//     /close/N   closes at once with code N and the reason "bye from node"
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  perMessageDeflate: true,
  maxPayload: 32 * 1024 * 1024,
  verifyClient: (info, done) =>
    info.req.url === "/refuse" ? done(false, 403, "Forbidden") : done(true),
});

wss.on("listening", () => console.log(wss.address().port));

wss.on("connection", (ws, request) => {
  const path = request.url;
  if (path.startsWith("/close/")) {
    ws.close(Number(path.slice("/close/".length)), "bye from node");
    return;
  }
  if (path === "/info") {
    ws.send(ws.extensions || "none");
  }
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
