import assert from "node:assert/strict";
import net from "node:net";
import {
  type AcceptContext,
  BootstrapError,
  type BootstrapSession,
  connectBootstrap,
  type ConnectBootstrapOptions,
  serveBootstrap,
  type ServeBootstrapOptions,
} from "../../lib/replication/bootstrap.ts";
import {
  decodeMessage,
  encodeMessage,
  welcomeMacInput,
} from "../../lib/replication/control_codec.ts";
import {
  type ControlMessage,
  type HelloFields,
  type WelcomeFields,
} from "../../lib/replication/control_messages.ts";

const secret = "correct horse battery staple";
const gid = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const helloFields: HelloFields = {
  endpoint: { qpn: 0x123456, psn: 0xabcdef, gid, mtu: 5 },
  ringBytes: 1 << 20,
  maxLogBytes: 256 * 1024,
  depth: 64,
};
const welcomeFields: WelcomeFields = {
  endpoint: { qpn: 0x42, psn: 7, gid: gid.slice().reverse(), mtu: 3 },
  ringAddr: 0x7f12_3456_7000,
  rkey: 0xdeadbeef,
  metaSlots: 128,
  ringBytes: 1 << 20,
  nextSeq: 42,
  released: 2 ** 40 + 4096,
};

interface Harness {
  port: number;
  logs: string[];
  contexts: AcceptContext[];
  nextSession(): Promise<BootstrapSession>;
  close(): Promise<void>;
}

/** A replica server on 127.0.0.1:0 with short timeouts; it records logs and sessions. */
async function startReplica(overrides: Partial<ServeBootstrapOptions> = {}): Promise<Harness> {
  const logs: string[] = [];
  const contexts: AcceptContext[] = [];
  const sessions: BootstrapSession[] = [];
  const waiters: ((session: BootstrapSession) => void)[] = [];
  const server = await serveBootstrap({
    secret,
    port: 0,
    accept: (_hello, context) => {
      contexts.push(context);
      return Promise.resolve({ ok: true, welcome: welcomeFields });
    },
    onSession: (session) => {
      const waiter = waiters.shift();
      if (waiter) waiter(session);
      else sessions.push(session);
    },
    log: (line) => logs.push(line),
    controlTimeoutMs: 300,
    handshakeTimeoutMs: 1000,
    ...overrides,
  });
  return {
    port: server.port,
    logs,
    contexts,
    nextSession: () => {
      const ready = sessions.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
    },
    close: () => server.close(),
  };
}

function connect(port: number, overrides: Partial<ConnectBootstrapOptions> = {}) {
  return connectBootstrap({ ...helloFields, secret, port, controlTimeoutMs: 1000, ...overrides });
}

/** Runs a whole correct handshake and checks both sides agree, then ends the session. */
async function handshakeOk(replica: Harness): Promise<void> {
  const link = await connect(replica.port);
  assert.deepEqual(link.welcome, welcomeFields);
  await link.sendReady();
  const session = await replica.nextSession();
  const { type: _, nonce: __, mac: ___, ...hello } = session.hello;
  assert.deepEqual(hello, helloFields);
  assert.deepEqual(session.welcome, welcomeFields);
  link.close();
  await session.waitClosed();
  session.close();
}

async function rejects(promise: Promise<unknown>, reason: string, fromPeer: boolean) {
  const error = await promise.then(() => assert.fail("expected a BootstrapError"), (e) => e);
  assert.ok(error instanceof BootstrapError, String(error));
  assert.equal(error.reason, reason, error.message);
  assert.equal(error.fromPeer, fromPeer, error.message);
  return error;
}

/** Reads until the peer closes (or resets) and decodes the frames received. */
async function readFrames(conn: Deno.Conn): Promise<ControlMessage[]> {
  const chunks: number[] = [];
  const buffer = new Uint8Array(2048);
  try {
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      chunks.push(...buffer.subarray(0, n));
    }
  } catch { /* a reset ends the stream too */ }
  const bytes = Uint8Array.from(chunks);
  const view = new DataView(bytes.buffer);
  const frames: ControlMessage[] = [];
  for (let at = 0; at + 4 <= bytes.length;) {
    const end = at + 4 + view.getUint32(at, true);
    const decoded = decodeMessage(bytes.subarray(at, end));
    assert.ok(decoded.ok, decoded.ok ? "" : decoded.detail);
    frames.push(decoded.value);
    at = end;
  }
  return frames;
}

/** Reads exactly one frame (test side, trusted sizes). */
async function readFrame(conn: Deno.Conn): Promise<ControlMessage> {
  const read = async (n: number) => {
    const bytes = new Uint8Array(n);
    for (let at = 0; at < n;) at += (await conn.read(bytes.subarray(at))) ?? assert.fail("EOF");
    return bytes;
  };
  const prefix = await read(4);
  const body = await read(new DataView(prefix.buffer).getUint32(0, true));
  const decoded = decodeMessage(Uint8Array.from([...prefix, ...body]));
  assert.ok(decoded.ok);
  return decoded.value;
}

function rawConnect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

const fakeHello = () =>
  encodeMessage({
    type: "HELLO",
    nonce: new Uint8Array(32),
    mac: new Uint8Array(32),
    ...helloFields,
  });

Deno.test("bootstrap round-trips every field and hands the session over", async (t) => {
  const replica = await startReplica();
  await t.step("fields match on both sides", () => handshakeOk(replica));
  await t.step("the replica closing ends the primary's session", async () => {
    const link = await connect(replica.port);
    await link.sendReady();
    const session = await replica.nextSession();
    session.close();
    await link.waitClosed();
    link.close();
  });
  assert.deepEqual(replica.logs, []);
  await replica.close();
});

Deno.test("replica answers BAD_AUTH to a wrong secret, logs it, and keeps serving", async () => {
  const replica = await startReplica();
  const error = await rejects(
    connect(replica.port, { secret: "not the secret" }),
    "BAD_AUTH",
    true,
  );
  assert.match(error.message, /wrong secret \(set the same --secret or RRL_SECRET on both sides\)/);
  assert.equal(replica.logs.length, 1);
  assert.match(replica.logs[0], /BAD_AUTH.*wrong mac/);
  assert.equal(replica.contexts.length, 0, "accept() must not run before the mac checks out");
  await handshakeOk(replica);
  await replica.close();
});

Deno.test("primary refuses a WELCOME from a replica without the secret", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const impostor = (async () => {
    const conn = await listener.accept();
    await conn.write(encodeMessage({ type: "CHALLENGE", nonce: new Uint8Array(32) }));
    const hello = await readFrame(conn);
    assert.equal(hello.type, "HELLO");
    if (hello.type !== "HELLO") return;
    const algorithm = { name: "HMAC", hash: "SHA-256" };
    const wrong = new TextEncoder().encode("impostor secret");
    const key = await crypto.subtle.importKey("raw", wrong, algorithm, false, ["sign"]);
    const data = welcomeMacInput(hello.nonce, welcomeFields);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
    await conn.write(encodeMessage({ type: "WELCOME", mac, ...welcomeFields }));
    await readFrames(conn);
    conn.close();
  })();
  const error = await rejects(connect(listener.addr.port), "BAD_AUTH", false);
  assert.match(error.message, /WELCOME with a wrong mac/);
  await impostor;
  listener.close();
});

Deno.test("version mismatch is refused BAD_VERSION on both sides", async (t) => {
  await t.step("replica refuses a version 2 HELLO", async () => {
    const replica = await startReplica();
    const conn = await rawConnect(replica.port);
    assert.equal((await readFrame(conn)).type, "CHALLENGE");
    const hello = fakeHello();
    hello[8] = 2;
    await conn.write(hello);
    assert.deepEqual(await readFrames(conn), [
      { type: "REFUSE", reason: "BAD_VERSION", text: "this side speaks bootstrap version 1" },
    ]);
    conn.close();
    await replica.close();
    assert.match(replica.logs.join("\n"), /BAD_VERSION/);
  });
  await t.step("primary refuses a version 2 CHALLENGE", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const fake = (async () => {
      const conn = await listener.accept();
      const challenge = encodeMessage({ type: "CHALLENGE", nonce: new Uint8Array(32) });
      challenge[8] = 2;
      await conn.write(challenge);
      await readFrames(conn);
      conn.close();
    })();
    await rejects(connect(listener.addr.port), "BAD_VERSION", false);
    await fake;
    listener.close();
  });
});

Deno.test("replica refuses junk, oversized and truncated frames and keeps serving", async (t) => {
  const replica = await startReplica();
  const expectRefusal = async (bytes: Uint8Array, detail: RegExp) => {
    const conn = await rawConnect(replica.port);
    await conn.write(bytes);
    const frames = await readFrames(conn);
    conn.close();
    assert.equal(frames.length, 2);
    assert.equal(frames[0].type, "CHALLENGE");
    const refuse = frames[1];
    assert.ok(refuse.type === "REFUSE" && refuse.reason === "BAD_MESSAGE");
    assert.match(refuse.text, detail);
  };
  await t.step("HTTP request", async () => {
    await expectRefusal(
      new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      /above 1024/,
    );
  });
  await t.step("plausible length, bad magic", async () => {
    await expectRefusal(Uint8Array.from([12, 0, 0, 0, ...new Array(12).fill(0x41)]), /magic/);
  });
  await t.step("length prefix 0xFFFFFFFF", async () => {
    await expectRefusal(Uint8Array.from([0xff, 0xff, 0xff, 0xff]), /4294967295 is above/);
  });
  await t.step("length prefix below 8", async () => {
    await expectRefusal(Uint8Array.from([3, 0, 0, 0, 1, 2, 3]), /below 8/);
  });
  await t.step("a CHALLENGE instead of a HELLO", async () => {
    await expectRefusal(encodeMessage({ type: "CHALLENGE", nonce: new Uint8Array(32) }), /got CH/);
  });
  await t.step("truncated HELLO then close", async () => {
    const conn = await rawConnect(replica.port);
    assert.equal((await readFrame(conn)).type, "CHALLENGE");
    await conn.write(fakeHello().subarray(0, 50));
    await conn.closeWrite();
    assert.deepEqual(await readFrames(conn), []);
    conn.close();
  });
  await t.step("a correct primary still succeeds", () => handshakeOk(replica));
  await replica.close();
  const logs = replica.logs.join("\n");
  for (const reason of ["OVERSIZED", "BAD_MESSAGE", "TRUNCATED"]) {
    assert.match(logs, RegExp(reason));
  }
});

Deno.test("a silent client times out while others are served", async () => {
  const replica = await startReplica();
  const silent = await rawConnect(replica.port);
  const started = performance.now();
  const silentFrames = readFrames(silent);
  await handshakeOk(replica);
  await handshakeOk(replica);
  assert.deepEqual((await silentFrames).map((m) => m.type), ["CHALLENGE"]);
  assert.ok(performance.now() - started >= 250, "closed before the control timeout");
  silent.close();
  await replica.close();
  assert.match(replica.logs.join("\n"), /TIMEOUT: No HELLO from the primary/);
});

Deno.test("replica refuses BUSY beyond handshakesMax, then serves again", async () => {
  const replica = await startReplica({ handshakesMax: 1 });
  const silent = await rawConnect(replica.port);
  assert.equal((await readFrame(silent)).type, "CHALLENGE");
  const error = await rejects(connect(replica.port, { busyRetryMs: 0 }), "BUSY", true);
  assert.match(error.message, /1 handshakes already in progress/);
  await readFrames(silent);
  silent.close();
  await handshakeOk(replica);
  await replica.close();
});

/** A client bound to `localAddress` (Deno.connect cannot bind one) that never sends. */
function silentFrom(localAddress: string, port: number) {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress });
  const first = Promise.withResolvers<ControlMessage | null>();
  let bytes = new Uint8Array(0);
  socket.on("error", () => {}); // a reset ends it like a close
  socket.on("close", () => first.resolve(null));
  socket.on("data", (chunk: Uint8Array) => {
    bytes = Uint8Array.from([...bytes, ...chunk]);
    const end = bytes.length < 4 ? Infinity : 4 + new DataView(bytes.buffer).getUint32(0, true);
    if (bytes.length < end) return;
    const decoded = decodeMessage(bytes.subarray(0, end));
    first.resolve(decoded.ok ? decoded.value : null);
  });
  return { first: first.promise, close: () => socket.destroy() };
}

const sleepMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("a connection without a valid HELLO loses its slot after authTimeoutMs", async (t) => {
  const slow = { controlTimeoutMs: 5000, handshakeTimeoutMs: 10_000 };
  const replica = await startReplica({ ...slow, authTimeoutMs: 200, handshakesMax: 1 });
  await t.step("a silent connection is closed after 200 ms, not 5 s", async () => {
    const silent = await rawConnect(replica.port);
    const started = performance.now();
    assert.deepEqual((await readFrames(silent)).map((m) => m.type), ["CHALLENGE"]);
    const heldMs = performance.now() - started;
    assert.ok(heldMs >= 150 && heldMs < 1000, `held the slot ${heldMs.toFixed(0)} ms`);
    silent.close();
  });
  await t.step("a HELLO sent a byte every 20 ms is cut at the same bound", async () => {
    const slowloris = await rawConnect(replica.port);
    assert.equal((await readFrame(slowloris)).type, "CHALLENGE");
    const started = performance.now();
    let closed = false;
    const frames = readFrames(slowloris).finally(() => (closed = true));
    const hello = fakeHello();
    for (let at = 0; at < hello.length - 1 && !closed; at++) {
      await slowloris.write(hello.subarray(at, at + 1)).catch(() => {});
      await sleepMs(20);
    }
    assert.deepEqual(await frames, []);
    const heldMs = performance.now() - started;
    assert.ok(closed && heldMs < 1000, `held the slot ${heldMs.toFixed(0)} ms`);
    slowloris.close();
  });
  await t.step("the freed slot serves a primary at once", () => handshakeOk(replica));
  await replica.close();
  assert.match(replica.logs.join("\n"), /TIMEOUT: .* sent no HELLO with a valid mac within 200 ms/);
  await t.step("the bound ends at authentication: a slow accept() is not cut", async () => {
    const accept = async () => {
      await sleepMs(400);
      return { ok: true, welcome: welcomeFields } as const;
    };
    const patient = await startReplica({ ...slow, authTimeoutMs: 200, accept });
    await handshakeOk(patient);
    await patient.close();
    assert.deepEqual(patient.logs, []);
  });
});

Deno.test("one address holds at most handshakesPerSourceMax slots; others still get in", async (t) => {
  const replica = await startReplica({
    controlTimeoutMs: 5000,
    handshakeTimeoutMs: 10_000,
    authTimeoutMs: 5000,
    handshakesMax: 4,
    handshakesPerSourceMax: 2,
  });
  const held: ReturnType<typeof silentFrom>[] = [];
  const open = async (from: string) => {
    const client = silentFrom(from, replica.port);
    held.push(client);
    return await client.first;
  };
  await t.step("a third connection from 127.0.0.2 is refused BUSY", async () => {
    assert.equal((await open("127.0.0.2"))?.type, "CHALLENGE");
    assert.equal((await open("127.0.0.2"))?.type, "CHALLENGE");
    assert.deepEqual(await open("127.0.0.2"), {
      type: "REFUSE",
      reason: "BUSY",
      text: "2 handshakes already in progress from 127.0.0.2",
    });
  });
  await t.step("127.0.0.3 still gets a CHALLENGE", async () => {
    assert.equal((await open("127.0.0.3"))?.type, "CHALLENGE");
  });
  await t.step("a primary from 127.0.0.1 still gets in", () => handshakeOk(replica));
  await t.step("handshakesMax still bounds them all", async () => {
    assert.equal((await open("127.0.0.4"))?.type, "CHALLENGE");
    const refuse = await open("127.0.0.5");
    assert.ok(refuse?.type === "REFUSE" && refuse.reason === "BUSY", JSON.stringify(refuse));
    assert.equal(refuse.text, "4 handshakes already in progress");
  });
  for (const client of held) client.close();
  await replica.close();
});

Deno.test("at start a BUSY refusal is retried with backoff, with a clear error at the bound", async (t) => {
  await t.step("succeeds once a silent connection's slot frees", async () => {
    const replica = await startReplica({
      controlTimeoutMs: 5000,
      authTimeoutMs: 400,
      handshakesMax: 1,
    });
    const silent = await rawConnect(replica.port);
    assert.equal((await readFrame(silent)).type, "CHALLENGE");
    const started = performance.now();
    const lines: string[] = [];
    const link = await connect(replica.port, { busyRetryMs: 5000, log: (l) => lines.push(l) });
    const waitedMs = performance.now() - started;
    assert.ok(waitedMs >= 300 && waitedMs < 2500, `got in after ${waitedMs.toFixed(0)} ms`);
    assert.ok(lines.length >= 2, lines.join("\n"));
    assert.match(lines[0], /1 handshakes already in progress.*; retry 1 in \d+ ms$/);
    await link.sendReady();
    const session = await replica.nextSession();
    link.close();
    await session.waitClosed();
    session.close();
    silent.close();
    await replica.close();
  });
  await t.step("gives up after busyRetryMs with BUSY, the attempts and what to do", async () => {
    let asked = 0;
    const accept = () => {
      asked++;
      return Promise.resolve({ ok: false, reason: "BUSY", text: "already replicating" } as const);
    };
    const replica = await startReplica({ accept });
    const started = performance.now();
    const error = await rejects(connect(replica.port, { busyRetryMs: 400 }), "BUSY", true);
    const waitedMs = performance.now() - started;
    assert.match(
      error.message,
      /^Still refused BUSY after \d+ attempts in \d+ ms \(busyRetryMs 400; raise it to wait longer\): .*already replicating/,
    );
    assert.equal(error.detail, "already replicating");
    assert.ok(asked >= 3, `asked ${asked} times`);
    assert.ok(waitedMs < 1000, `gave up after ${waitedMs.toFixed(0)} ms`);
    await replica.close();
  });
});

Deno.test("accept() decides: refusals reach the primary with reason and text", async (t) => {
  await t.step("BUSY", async () => {
    const replica = await startReplica({
      accept: () => Promise.resolve({ ok: false, reason: "BUSY", text: "already replicating" }),
    });
    const error = await rejects(connect(replica.port, { busyRetryMs: 0 }), "BUSY", true);
    assert.equal(error.detail, "already replicating");
    await replica.close();
  });
  await t.step("a long text is clipped to 200 bytes", async () => {
    const text = "é".repeat(300);
    const replica = await startReplica({
      accept: () => Promise.resolve({ ok: false, reason: "MISMATCH", text }),
    });
    const error = await rejects(connect(replica.port), "MISMATCH", true);
    assert.equal(error.detail, "é".repeat(100));
    await replica.close();
  });
  await t.step("accept() throws: REFUSED, details only in the replica's log", async () => {
    const replica = await startReplica({ accept: () => Promise.reject(new Error("ENOMEM")) });
    const error = await rejects(connect(replica.port), "REFUSED", true);
    assert.doesNotMatch(error.message, /ENOMEM/);
    await replica.close();
    assert.match(replica.logs.join("\n"), /ENOMEM/);
  });
  await t.step("a WELCOME with another ring size is a MISMATCH", async () => {
    const welcome = { ...welcomeFields, ringBytes: 2 << 20 };
    const replica = await startReplica({ accept: () => Promise.resolve({ ok: true, welcome }) });
    await rejects(connect(replica.port), "MISMATCH", false);
    await replica.close();
  });
});

Deno.test("a primary that never sends READY aborts accept()'s signal", async (t) => {
  const replica = await startReplica();
  const aborted = (context: AcceptContext) =>
    new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
  await t.step("primary closes after WELCOME", async () => {
    const link = await connect(replica.port);
    link.close();
    await aborted(replica.contexts[0]);
    assert.equal(replica.contexts[0].signal.reason.reason, "CLOSED");
  });
  await t.step("primary stays silent after WELCOME", async () => {
    const link = await connect(replica.port);
    await aborted(replica.contexts[1]);
    assert.equal(replica.contexts[1].signal.reason.reason, "TIMEOUT");
    await link.waitClosed();
    link.close();
  });
  await replica.close();
  assert.match(replica.logs.join("\n"), /TIMEOUT: No READY from the primary/);
});

Deno.test("aborting the server stops it and its handshakes at once", async () => {
  const controller = new AbortController();
  const slow = { signal: controller.signal, controlTimeoutMs: 5000, handshakeTimeoutMs: 10000 };
  const replica = await startReplica(slow);
  const silent = await rawConnect(replica.port);
  assert.equal((await readFrame(silent)).type, "CHALLENGE");
  const started = performance.now();
  controller.abort();
  assert.deepEqual(await readFrames(silent), []);
  assert.ok(performance.now() - started < 1000, "the handshake outlived the server");
  silent.close();
  await replica.close();
  await rejects(connect(replica.port, { connectAttempts: 1 }), "CONNECT_FAILED", false);
});

Deno.test("connecting retries while refused, then gives up with CONNECT_FAILED", async (t) => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  await t.step("gives up", async () => {
    const attempt = connect(port, { connectAttempts: 2, connectRetryDelayMs: 10 });
    const error = await rejects(attempt, "CONNECT_FAILED", false);
    assert.match(error.message, /attempt 2 of 2.*start the replica first/);
  });
  await t.step("succeeds once the replica is up", async () => {
    const link = connect(port, { connectAttempts: 50, connectRetryDelayMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 60));
    const replica = await startReplica({ port });
    const { welcome, close } = await link;
    assert.deepEqual(welcome, welcomeFields);
    close();
    await replica.close();
  });
});

Deno.test("secrets and options are checked before anything is sent", async () => {
  const accept = () => Promise.resolve({ ok: false, reason: "BUSY", text: "" } as const);
  const serve = (secret: string) => serveBootstrap({ secret, port: 0, accept, onSession() {} });
  let error = await rejects(serve(""), "BAD_OPTIONS", false);
  assert.match(error.message, /No bootstrap secret given \(set the same --secret or RRL_SECRET/);
  error = await rejects(serve("short"), "BAD_OPTIONS", false);
  assert.match(error.message, /secret is 5 bytes, not 8 to 1024/);
  await rejects(connect(1, { secret: "1234567" }), "BAD_OPTIONS", false);
  await rejects(connect(1, { depth: 0 }), "BAD_OPTIONS", false);
  await rejects(connect(1, { controlTimeoutMs: -1 }), "BAD_OPTIONS", false);
});
