/** Registers BYTES and prints the error message (for the locked-memory limit test). */
import { Context } from "../../../lib/verbs/context.ts";
import { ProtectionDomain } from "../../../lib/verbs/pd.ts";
import { VerbsError } from "../../../lib/verbs/errors.ts";

if (!import.meta.main) throw new Error("reg_mr_child.ts is a program: run it, do not import it");

const [device, bytes] = Deno.args;
using ctx = Context.open(device);
using pd = new ProtectionDomain(ctx);
try {
  using _mr = pd.register(new ArrayBuffer(Number(bytes)), 1);
  console.log(JSON.stringify({ ok: true }));
} catch (error) {
  if (!(error instanceof VerbsError)) throw error;
  console.log(
    JSON.stringify({ ok: false, verb: error.verb, errno: error.errnoName, message: error.message }),
  );
}
