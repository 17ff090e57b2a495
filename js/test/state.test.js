import { describe, expect, it } from "vitest";
import { parseMessage } from "../src/protocol.js";
import { Store, continuation, reduceSnapshot, emptyGridState, reduceDelta } from "../src/state.js";
import fixture from "./fixtures/messages.json";

/**
 * Feed a scenario to a Store the way index.js does (a snapshot change first syncs a new run).
 * @param {any} scenario @param {(store: Store, step: any) => void} [afterStep]
 */
function replay(scenario, afterStep) {
  const store = new Store();
  const traits = { ...scenario.initial };
  store.setPanes(traits.panes);
  store.setRun(traits.run);
  store.setSnapshot(traits.snapshot);
  for (const step of scenario.steps) {
    if (step.msg) {
      const parsed = parseMessage(step.msg);
      if (parsed.ok) store.applyDelta(parsed.message, 0);
    } else {
      traits[step.trait] = step.value;
      if (step.trait === "panes") store.setPanes(step.value);
      if (step.trait === "run") store.setRun(step.value);
      if (step.trait === "snapshot") {
        if (traits.run.run_id !== store.state.run.run_id) store.setRun(traits.run);
        store.setSnapshot(step.value);
      }
    }
    afterStep?.(store, step);
  }
  return store;
}

describe("fixture scenarios through the Store", () => {
  for (const scenario of fixture.scenarios) {
    it(`${scenario.name}: ${scenario.description}`, () => {
      const store = replay(scenario, (s, step) => {
        for (const [id, want] of Object.entries(step.expect ?? {})) {
          expect(s.state.states[id], `after step ${JSON.stringify(step).slice(0, 80)}`).toMatchObject(/** @type {object} */ (want));
        }
      });
      expect(store.state.run).toEqual(scenario.expected.run);
      expect(store.state.states).toEqual(scenario.expected.panes);
    });
  }

  it("ignores the fixtures' invalid messages", () => {
    for (const msg of fixture.ignored_messages) expect(parseMessage(msg).ok).toBe(false);
  });
});

describe("Store", () => {
  it("reports each changed pane once per flush and resets the dirty set", () => {
    const store = new Store();
    store.setPanes([{ id: "a", name: "A" }]);
    store.applyDelta({ v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "x"] } } }, 10);
    store.applyDelta({ v: 1, type: "delta", seq: 2, panes: { a: { text: [1, "y"] } }, run: { elapsed_s: 1 } }, 20);
    const dirty = store.takeDirty();
    expect([...dirty.panes]).toEqual(["a"]);
    expect(dirty.run).toBe(true);
    expect(dirty.layout).toBe(true);
    expect(store.hasDirty()).toBe(false);
    expect(store.lastActivity.get("a")).toBe(20);
  });

  it("keeps what was appended to each pane's text until the view takes it; a snapshot voids it", () => {
    const store = new Store();
    store.setPanes([{ id: "a", name: "A" }, { id: "b", name: "B" }]);
    store.applyDelta({ v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "he"] }, b: { text: [0, "x"] } } }, 0);
    store.applyDelta({ v: 1, type: "delta", seq: 2, panes: { a: { text: [1, "ello"], status: "streaming" } } }, 0);
    store.applyDelta({ v: 1, type: "delta", seq: 3, panes: { a: { status: "done" } } }, 0);
    expect(store.takeTextAppends("a")).toEqual([{ field: "text", at: 0, extra: "he" }, { field: "text", at: 2, extra: "llo" }]);
    expect(store.takeTextAppends("a")).toEqual([]);
    store.setSnapshot({ b: { text: "xyz", seq: 9 } });
    expect(store.takeTextAppends("b")).toEqual([]);
    store.applyDelta({ v: 1, type: "delta", seq: 10, panes: { b: { text: [3, "!"], reasoning: [0, "hm"] } } }, 0);
    expect(store.takeTextAppends("b")).toEqual([{ field: "text", at: 3, extra: "!" }, { field: "reasoning", at: 0, extra: "hm" }]);
    store.applyDelta({ v: 1, type: "delta", seq: 11, panes: { b: { text: [4, "?"] } } }, 0);
    store.setRun({ run_id: "other", status: "running" });
    expect(store.takeTextAppends("b")).toEqual([]);
  });

  it("joins appends only when they continue the string without a gap and reach its length", () => {
    const a = (/** @type {number} */ at, /** @type {string} */ extra) => ({ field: /** @type {const} */ ("text"), at, extra });
    expect(continuation([a(14, " para"), a(19, "!")], 14, 20)).toBe(" para!");
    expect(continuation([a(3, "x")], 14, 15)).toBeNull(); // not at the end of what is shown
    expect(continuation([a(14, " para"), a(20, "y")], 14, 21)).toBeNull(); // a hole
    expect(continuation([a(14, " para")], 14, 30)).toBeNull(); // falls short of the state's length
    expect(continuation([], 14, 14)).toBeNull();
  });

  it("replaces a stale pane from any snapshot, even one older than its seq", () => {
    let g = emptyGridState();
    g = reduceDelta(g, { v: 1, type: "delta", seq: 5, panes: { a: { text: [3, "lost before"] } } }).state;
    expect(g.states.a.stale).toBe(true);
    const r = reduceSnapshot(g, { a: { text: "abc", seq: 4, status: "streaming" } });
    expect(r.changedPanes).toEqual(["a"]);
    expect(r.state.states.a).toMatchObject({ text: "abc", stale: false, seq: 4 });
  });

  it("drops the previous run's panes when the run id changes", () => {
    const store = new Store();
    store.setRun({ run_id: "r1", status: "running" });
    store.applyDelta({ v: 1, type: "delta", seq: 9, panes: { a: { text: [0, "old"] } } }, 0);
    store.setRun({ run_id: "r2", status: "running" });
    expect(store.state.states).toEqual({});
    store.setSnapshot({ a: { text: "", seq: 0 } });
    store.applyDelta({ v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "new"] } } }, 0);
    expect(store.state.states.a.text).toBe("new");
  });
});
