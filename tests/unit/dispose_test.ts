import assert from "node:assert/strict";
import { HostCacheService } from "../../lib/cache/service.ts";
import { WriteCache } from "../../lib/cache/write_cache.ts";
import {
  closeAfter,
  openInOrder,
  openInOrderAsync,
  type WithSuppressed,
} from "../../lib/dispose.ts";

/** A resource that records its close in `closed` and throws `failure` from it if given. */
function resource(name: string, closed: string[], failure?: Error): Disposable {
  return {
    [Symbol.dispose]() {
      closed.push(name);
      if (failure) throw failure;
    },
  };
}

Deno.test("a failed opening closes what it opened newest first and rethrows the original error", () => {
  const closed: string[] = [];
  const original = new RangeError("step 3 failed");
  assert.throws(
    () =>
      openInOrder((stack) => {
        stack.use(resource("context", closed));
        stack.use(resource("pd", closed));
        stack.use(resource("mr", closed));
        throw original;
      }),
    (e: unknown) => e === original && (e as WithSuppressed).suppressed === undefined,
  );
  assert.deepEqual(closed, ["mr", "pd", "context"]);
});

Deno.test("a close failing during the cleanup is attached to the original error, and the other closes still run", () => {
  const closed: string[] = [];
  const original = new Error("listen failed");
  const closeFailure = new Error("close its children first");
  assert.throws(
    () =>
      openInOrder((stack) => {
        stack.use(resource("context", closed));
        stack.use(resource("pd", closed, closeFailure));
        stack.use(resource("memory", closed));
        throw original;
      }),
    (e: unknown) => e === original && (e as WithSuppressed).suppressed === closeFailure,
  );
  assert.deepEqual(closed, ["memory", "pd", "context"]);
});

Deno.test("several close failures are all kept, newest outermost", () => {
  const first = new Error("first close");
  const second = new Error("second close");
  const original = new Error("opening failed");
  const stack = new DisposableStack();
  stack.use(resource("a", [], second));
  stack.use(resource("b", [], first));
  assert.throws(() =>
    openInOrder((inner) => {
      inner.use(stack);
      throw original;
    })
  );
  const suppressed = (original as WithSuppressed).suppressed as SuppressedError;
  assert.ok(suppressed instanceof SuppressedError);
  assert.equal(suppressed.error, second);
  assert.equal(suppressed.suppressed, first);
});

Deno.test("a successful opening closes nothing: its result owns what it opened", () => {
  const closed: string[] = [];
  const made = openInOrder((stack) => {
    stack.use(resource("a", closed));
    return 7;
  });
  assert.equal(made, 7);
  assert.deepEqual(closed, []);
});

Deno.test("an async opening awaits async closes, newest first, and rethrows the original error", async () => {
  const closed: string[] = [];
  const original = new Error("bootstrap failed");
  await assert.rejects(
    openInOrderAsync(async (stack) => {
      stack.use(resource("side", closed));
      stack.use({
        async [Symbol.asyncDispose]() {
          await Promise.resolve();
          closed.push("server");
        },
      });
      await Promise.resolve();
      throw original;
    }),
    (e: unknown) => e === original,
  );
  assert.deepEqual(closed, ["server", "side"]);
});

Deno.test("closeAfter closes one resource after its setup failed and returns the original error", () => {
  const closed: string[] = [];
  const original = new Error("fcntl failed");
  const closeFailure = new Error("destroy failed");
  const error = closeAfter(resource("channel", closed, closeFailure), original);
  assert.equal(error, original);
  assert.equal((error as WithSuppressed).suppressed, closeFailure);
  assert.deepEqual(closed, ["channel"]);
});

Deno.test("the host cache service that cannot open its device closes its cache file and backing store and rethrows the device error", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "rrl-dispose-" });
  const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
  try {
    const before = fds();
    await assert.rejects(
      HostCacheService.open({
        device: "rrl-no-such-device",
        host: "127.0.0.1",
        secret: "0123456789abcdef",
        cachePath: `${dir}/primary.cache`,
        backingPath: `${dir}/backing.img`,
        capacityBlocks: 64,
        ringBytes: 64 * 1024,
      }),
      /No RDMA device 'rrl-no-such-device'/,
    );
    assert.equal(fds(), before, "no file descriptor left open");
    // The cache file is not locked any more: it opens again.
    WriteCache.open({ path: `${dir}/primary.cache`, role: "primary" }).close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
