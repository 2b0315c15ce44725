// The browser path, tested in Debian's Chromium driven by playwright-core: two pages open the chat
// page served by `rfc6455 broadcast`, one sends a message and the other shows it; the server is
// stopped and both pages say they are disconnected; it comes back on the same port and both pages
// reconnect by themselves and chat again. A third page in room team-a (/team-a) sees none of the
// first room's messages and they none of its, and each page shows how many people its room has.
// Screenshots go to tests/browser/screenshots/.
//
// The same again over TLS when run.sh made certificates (CERTS): the page over https:// chats
// over wss://, Chromium trusting the run's certificate by its public key
// (--ignore-certificate-errors-spki-list, SPKI from run.sh), not ignoring certificate errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
// The server binary, as cargo reported it to run.sh: never a guessed target/release path, which
// may hold a stale build.
const binary = process.env.RFC6455_BIN;
if (!binary) throw new Error("RFC6455_BIN is not set: run tests/browser/run.sh");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const screenshots = path.join(here, "screenshots");

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => { socket.destroy(); resolve(true); });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} never opened`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const certs = process.env.CERTS;
const spki = process.env.SPKI;

async function startServer(port, tls) {
  const args = ["broadcast", "--port", String(port)];
  if (tls) args.push("--tls-cert", path.join(certs, "cert.pem"), "--tls-key", path.join(certs, "key.pem"));
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "inherit"] });
  await waitForPort(port, 10000);
  return child;
}

async function stopServer(child) {
  child.kill("SIGTERM");
  const [code] = await once(child, "exit");
  assert.equal(code, 0, "the server exits with status 0 on SIGTERM");
}

/** Whether the test has stopped the server: set from SIGTERM until the restarted one listens. */
const outage = { serverDown: false };

/** Waits until every console message a page logged so far has reached its listeners. */
async function drainConsole(pages) {
  await Promise.all(pages.map((page) => page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 0)))));
}

/**
 * Collects script errors and console errors, which must not happen, with one exception: the
 * refused reconnections the test causes itself while it holds the server down. Any other failed
 * WebSocket connection (a wrong Sec-WebSocket-Accept, a reset) is an error even then.
 */
function watchErrors(page, label, errors) {
  page.on("pageerror", (error) => errors.push(`${label}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    const refused = /^WebSocket connection to '[^']*' failed: .*net::ERR_CONNECTION_REFUSED$/.test(text);
    if (!(refused && outage.serverDown)) errors.push(`${label}: ${text}`);
  });
}

async function send(page, text) {
  await page.fill("#message", text);
  await page.press("#message", "Enter");
}

async function expectMessage(page, text) {
  await page.locator("#log li.message span", { hasText: text }).first().waitFor({ timeout: 10000 });
}

async function expectPeople(page, count) {
  await page.waitForSelector(`#people[data-count="${count}"]`, { timeout: 10000 });
}

async function messages(page) {
  return page.locator("#log li.message span").allTextContents();
}

for (const tls of [false, true]) {
const name = tls ? "over https:// and wss://" : "over http:// and ws://";
test(`two pages chat, see the server go away, and reconnect when it returns, ${name}`, { skip: tls && !certs && "no CERTS" }, async () => {
  const port = await freePort();
  let server = await startServer(port, tls);
  const suffix = tls ? "-tls" : "";
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...(tls ? [`--ignore-certificate-errors-spki-list=${spki}`] : []),
    ],
  });
  const errors = [];
  try {
    // A desktop-sized page and a phone-sized one, in separate contexts (separate profiles).
    const desktop = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
    const phone = await (await browser.newContext({ viewport: { width: 390, height: 740 }, isMobile: true })).newPage();
    watchErrors(desktop, "desktop", errors);
    watchErrors(phone, "phone", errors);
    const origin = tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
    const url = `${origin}/`;
    await Promise.all([desktop.goto(url), phone.goto(url)]);
    if (tls) {
      // The page chose wss:// itself, from its own https:// origin.
      const socketUrl = await desktop.evaluate(() => socket.url);
      assert.equal(socketUrl, `wss://localhost:${port}/?presence`);
    }
    for (const page of [desktop, phone]) {
      await page.waitForSelector('#status[data-state="open"]', { timeout: 10000 });
    }

    // A third person, in room team-a: a link of its own.
    const team = await (await browser.newContext({ viewport: { width: 800, height: 600 } })).newPage();
    watchErrors(team, "team-a", errors);
    await team.goto(`${origin}/team-a`);
    await team.waitForSelector('#status[data-state="open"]', { timeout: 10000 });
    assert.equal(await team.textContent("#room"), "team-a");
    assert.equal(await desktop.textContent("#room"), "everyone");
    for (const page of [desktop, phone]) await expectPeople(page, 2);
    await expectPeople(team, 1);
    assert.equal(await team.textContent("#people"), "1 person here");

    await send(desktop, "hello from the desktop page");
    await expectMessage(phone, "hello from the desktop page");
    await expectMessage(desktop, "hello from the desktop page"); // the sender gets it too
    await send(phone, "and hello back from the phone");
    await expectMessage(desktop, "and hello back from the phone");
    await send(team, "only for team-a");
    await expectMessage(team, "only for team-a");
    // Messages of one room never reach the other: the phone's next message arrives after the
    // team's, so had the team's crossed, it would be there by now.
    await send(phone, "the first room again");
    await expectMessage(desktop, "the first room again");
    assert.deepEqual(await messages(team), ["only for team-a"]);
    assert.ok(!(await messages(desktop)).includes("only for team-a"));
    // A forged presence message is not relayed, so it cannot change anyone's count.
    await send(team, '{"presence":{"room":"team-a","count":99}}');
    await send(team, "after the forgery");
    await expectMessage(team, "after the forgery");
    assert.equal(await team.textContent("#people"), "1 person here");
    assert.deepEqual(await messages(team), ["only for team-a", "after the forgery"]);
    mkdirSync(screenshots, { recursive: true });
    await phone.screenshot({ path: path.join(screenshots, `chat-phone${suffix}.png`) });
    await desktop.screenshot({ path: path.join(screenshots, `chat-desktop${suffix}.png`) });
    await team.screenshot({ path: path.join(screenshots, `chat-team-a${suffix}.png`) });
    // Someone leaves: the others' count follows.
    await team.context().close();
    await phone.goto(`${origin}/team-a`);
    await phone.waitForSelector('#status[data-state="open"]', { timeout: 10000 });
    await expectPeople(desktop, 1);
    await expectPeople(phone, 1);
    await phone.goto(url);
    await phone.waitForSelector('#status[data-state="open"]', { timeout: 10000 });
    await expectPeople(desktop, 2);

    outage.serverDown = true;
    await stopServer(server);
    server = null;
    for (const page of [desktop, phone]) {
      await page.waitForSelector('#status[data-state="closed"]', { timeout: 10000 });
      assert.match(await page.textContent("#status"), /Disconnected/);
      assert.equal(await page.isDisabled("#message"), true, "input disabled while disconnected");
    }

    server = await startServer(port, tls);
    await drainConsole([desktop, phone]); // refusals from before the restart are still expected
    outage.serverDown = false;
    for (const page of [desktop, phone]) {
      await page.waitForSelector('#status[data-state="open"]', { timeout: 20000 });
    }
    await send(phone, "we are back");
    await expectMessage(desktop, "we are back");
    await desktop.screenshot({ path: path.join(screenshots, `chat-reconnected${suffix}.png`) });
    assert.deepEqual(errors, [], "no script errors, CSP violations or failed connections");
  } finally {
    await browser.close();
    if (server) await stopServer(server);
  }
});
}
