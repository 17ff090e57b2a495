// Fold a recorded kernel->view scenario (initial traits, then trait changes and custom
// messages in arrival order) through the view's own reducers and print the pane states as
// JSON. Used by the Python tests to check that the kernel's encoder and this protocol agree.
import { readFileSync } from "node:fs";
import { parseMessage } from "../src/protocol.js";
import { emptyGridState, reduceDelta, reducePanes, reduceRun, reduceSnapshot } from "../src/state.js";

const scenario = JSON.parse(readFileSync(process.argv[2], "utf8"));
// With --deltas-only, snapshot changes after the first are ignored: deltas alone must suffice.
const deltasOnly = process.argv.includes("--deltas-only");
let snapshots = 0;
let state = emptyGridState();
const init = scenario.initial ?? {};
state = reducePanes(state, init.panes ?? []);
if (init.run) state = reduceRun(state, init.run).state;
if (init.snapshot) state = reduceSnapshot(state, init.snapshot).state;
for (const step of scenario.steps) {
  if ("msg" in step) {
    const parsed = parseMessage(step.msg);
    if (!parsed.ok) throw new Error(`rejected message: ${parsed.reason}`);
    state = reduceDelta(state, parsed.message).state;
  } else if (step.trait === "panes") {
    state = reducePanes(state, step.value);
  } else if (step.trait === "run") {
    state = reduceRun(state, step.value).state;
  } else if (step.trait === "snapshot") {
    snapshots += 1;
    if (!deltasOnly || snapshots === 1) state = reduceSnapshot(state, step.value).state;
  }
}
process.stdout.write(JSON.stringify(state.states));
