import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import widget, { renderGrid as render } from "../src/index.js";
import { renderMarkdown, renderedHtml } from "../src/markdown.js";
import { formatCost } from "../src/protocol.js";
import { fragmentToHtml } from "../src/sanitize.js";
import { FakeModel, ManualFrames } from "./fake-model.js";
import fixture from "./fixtures/messages.json";

/** @param {string} text */
const fullHtml = (text) => fragmentToHtml(renderMarkdown(text));

/** @param {string} name */
const scenario = (name) => {
  const s = fixture.scenarios.find((x) => x.name === name);
  if (!s) throw new Error(name);
  return /** @type {any} */ (structuredClone(s));
};

/** @type {{model: FakeModel, el: HTMLElement, frames: ManualFrames, clock: {t: number}, cleanup: () => void}[]} */
let mounted = [];

/**
 * @param {Record<string, unknown>} traits
 * @param {{tickMs?: number, frameBudgetMs?: number, budgetClock?: () => number}} [opts]
 */
function mount(traits, opts = {}) {
  const model = new FakeModel(traits);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const frames = new ManualFrames();
  const clock = { t: 1_000_000 };
  const cleanup = render(/** @type {any} */ ({ model, el }), {
    requestFrame: frames.requestFrame,
    cancelFrame: frames.cancelFrame,
    now: () => clock.t,
    tickMs: opts.tickMs ?? 1e9,
    // Tests decide frames by hand: no real-time budget unless a test sets one.
    frameBudgetMs: opts.frameBudgetMs ?? Infinity,
    budgetClock: opts.budgetClock,
  });
  const m = { model, el, frames, clock, cleanup };
  mounted.push(m);
  return m;
}

/** @param {HTMLElement} el @param {string} id */
const paneEl = (el, id) => /** @type {HTMLElement} */ (el.querySelector(`.llmgrid-pane[data-pane-id="${id}"]`));
/** @param {HTMLElement} el @param {string} id @param {string} sel */
const inPane = (el, id, sel) => /** @type {HTMLElement} */ (paneEl(el, id).querySelector(sel));

/** @param {any} sc @param {FakeModel} model @param {ManualFrames} frames @param {number} every */
function replaySteps(sc, model, frames, every) {
  sc.steps.forEach((/** @type {any} */ step, /** @type {number} */ i) => {
    if (step.msg) model.message(step.msg);
    else model.setTrait(step.trait, step.value);
    if (every && i % every === 0) frames.run();
  });
  frames.run();
}

/** @param {HTMLElement} el @param {any} expected */
function expectDomMatches(el, expected) {
  for (const [id, want] of Object.entries(/** @type {Record<string, any>} */ (expected.panes))) {
    const p = paneEl(el, id);
    expect(p, id).not.toBeNull();
    expect(p.dataset.status, id).toBe(want.status);
    expect(p.dataset.textLength, id).toBe(String(want.text.length));
    expect(renderedHtml(inPane(el, id, ".llmgrid-pane-text")), id).toBe(fullHtml(want.text));
    expect(inPane(el, id, ".llmgrid-pane-refusal-text").textContent, id).toBe(want.refusal);
    expect(inPane(el, id, ".llmgrid-pane-refusal").hidden, id).toBe(want.refusal === "");
    expect(inPane(el, id, ".llmgrid-tokens").textContent, id).toBe(`${want.metrics.tokens} tok`);
    const cost = inPane(el, id, ".llmgrid-cost");
    expect(cost.hidden, id).toBe(want.metrics.cost_usd === null);
    expect(cost.textContent, id).toBe(formatCost(want.metrics.cost_usd, want.metrics.cost_source));
    expectTurnsMatch(el, id, want);
  }
  const root = /** @type {HTMLElement} */ (el.querySelector(".llmgrid-root"));
  expect(root.dataset.runStatus).toBe(expected.run.status);
  expect(el.querySelector(".llmgrid-total-tokens")?.textContent).toBe(`${expected.run.total_tokens} tok`);
  const total = /** @type {HTMLElement} */ (el.querySelector(".llmgrid-total-cost"));
  expect(total.hidden).toBe(expected.run.total_cost_usd === null);
  if (expected.run.total_cost_usd !== null) {
    expect(total.textContent).toBe(`total ${formatCost(expected.run.total_cost_usd, expected.run.cost_simulated ? "simulated" : null)}`);
  }
}

/**
 * A pane's earlier turns, collapsed, each "Turn N" with its question as text and its answer as the
 * Markdown renderer makes it; then the live turn's number (shown once there is a conversation).
 * @param {HTMLElement} el @param {string} id @param {any} want
 */
function expectTurnsMatch(el, id, want) {
  const turns = [...paneEl(el, id).querySelectorAll(".llmgrid-turns > details.llmgrid-turn")];
  expect(turns.length, id).toBe(want.turns.length);
  expect(inPane(el, id, ".llmgrid-turns").hidden, id).toBe(want.turns.length === 0);
  want.turns.forEach((/** @type {any} */ t, /** @type {number} */ i) => {
    const d = /** @type {HTMLDetailsElement} */ (turns[i]);
    expect(d.open, id).toBe(false);
    expect(d.dataset.turn).toBe(String(t.turn));
    expect(d.querySelector(".llmgrid-turn-number")?.textContent).toBe(`Turn ${t.turn}`);
    expect(d.querySelector(".llmgrid-turn-question")?.textContent).toBe(t.question);
    expect(d.querySelector(".llmgrid-status")?.textContent ?? "done").toBe(t.status);
    expect(renderedHtml(/** @type {HTMLElement} */ (d.querySelector(".llmgrid-turn-text")))).toBe(fullHtml(t.text));
  });
  const live = inPane(el, id, ".llmgrid-pane-turn");
  expect(live.hidden, id).toBe(want.turn === 1 && want.turns.length === 0);
  expect(live.textContent).toBe(`Turn ${want.turn}`);
  expect(paneEl(el, id).dataset.turn).toBe(String(want.turn));
}

afterEach(() => {
  for (const m of mounted) {
    m.cleanup();
    m.el.remove();
  }
  mounted = [];
  vi.restoreAllMocks();
});

describe("render", () => {
  it("follows anywidget's contract: default export with render returning a cleanup", () => {
    expect(widget.render).toBe(render);
    const { cleanup } = mount({ panes: [], snapshot: {}, run: {} });
    expect(typeof cleanup).toBe("function");
  });

  it("shows a snapshot immediately, masters last", () => {
    const sc = scenario("stream_to_done");
    const { el } = mount({ panes: sc.initial.panes, run: sc.expected.run, snapshot: sc.expected.panes });
    const ids = [...el.querySelectorAll(".llmgrid-pane")].map((p) => /** @type {HTMLElement} */ (p).dataset.paneId);
    expect(ids).toEqual(["gpt", "llama", "mistral", "search", "master"]);
    expect(paneEl(el, "master").classList.contains("llmgrid-kind-master")).toBe(true);
    expect(paneEl(el, "search").classList.contains("llmgrid-kind-search")).toBe(true);
    expectDomMatches(el, sc.expected);
  });

  for (const name of fixture.scenarios.map((s) => s.name)) {
    for (const every of [0, 1, 3]) {
      it(`${name}: snapshot then deltas gives the expected DOM (a frame every ${every || "end"} steps)`, () => {
        const sc = scenario(name);
        const { el, model, frames } = mount(sc.initial);
        replaySteps(sc, model, frames, every);
        expectDomMatches(el, sc.expected);
      });
    }
  }

  for (const order of [["snapshot", "run"], ["run", "snapshot"]]) {
    it(`takes a new run's snapshot synced together with its run (events ${order.join(" then ")})`, () => {
      const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: { a: { text: "old run", status: "done", seq: 40 } }, run: { run_id: "r1", status: "done" } });
      // ipywidgets sets every trait of one update before firing the change events.
      model.traits.run = { run_id: "r2", status: "running" };
      model.traits.snapshot = { a: { text: "", status: "queued", seq: 0 } };
      for (const name of order) model.emit(`change:${name}`);
      model.message({ v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "new run"], status: "streaming" } } });
      frames.run();
      expect(renderedHtml(inPane(el, "a", ".llmgrid-pane-text"))).toBe("<p>new run</p>\n");
      expect(paneEl(el, "a").dataset.status).toBe("streaming");
    });
  }

  it("shows a conversation's earlier turns collapsed above the live answer, inert, and keeps them across deltas", () => {
    const sc = scenario("follow_up_shows_earlier_turns");
    const { el, model, frames } = mount(sc.initial);
    frames.run();
    const gpt = paneEl(el, "gpt");
    const before = [...gpt.querySelectorAll(".llmgrid-turn")];
    expect(before.map((d) => d.querySelector("summary")?.textContent)).toEqual([
      "Turn 1Explain how TCP slow start works.",
      "Turn 2And <b>congestion avoidance</b>?failed",
    ]);
    // The turns, then the live turn's label, then the live answer: in that order in the content.
    const content = /** @type {HTMLElement} */ (gpt.querySelector(".llmgrid-pane-content"));
    const order = [".llmgrid-turns", ".llmgrid-pane-turn", ".llmgrid-pane-text"].map((sel) =>
      [...content.children].indexOf(/** @type {Element} */ (content.querySelector(`:scope > ${sel}`))));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(order[0]).toBe(0);
    // Model output and questions are untrusted: no element from their markup reaches the DOM.
    expect(gpt.querySelectorAll(".llmgrid-turns img, .llmgrid-turns script, .llmgrid-turns b").length).toBe(0);
    expect(gpt.querySelector(".llmgrid-turn-text strong")?.textContent).toBe("doubles");
    replaySteps(sc, model, frames, 1);
    const after = [...gpt.querySelectorAll(".llmgrid-turn")];
    expect(after.length).toBe(2);
    expect(after.every((d, i) => d === before[i])).toBe(true); // deltas and an equal snapshot leave them be
    expectDomMatches(el, sc.expected);
    // A notebook reopened after the run shows the same from its final snapshot alone.
    const reopened = mount({ panes: sc.initial.panes, run: sc.expected.run, snapshot: sc.expected.panes });
    expectDomMatches(reopened.el, sc.expected);
  });

  it("hides the turn label and earlier turns of a pane that is not in a conversation", () => {
    const sc = scenario("stream_to_done");
    const { el } = mount({ panes: sc.initial.panes, run: sc.expected.run, snapshot: sc.expected.panes });
    expect(inPane(el, "gpt", ".llmgrid-pane-turn").hidden).toBe(true);
    expect(inPane(el, "gpt", ".llmgrid-turns").hidden).toBe(true);
  });

  it("batches all deltas of a frame into one flush and never drops the last", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: { run_id: "r", status: "running" } });
    const parts = Array.from({ length: 500 }, (_, i) => `word${i} ${i % 40 === 39 ? "\n\n" : ""}`);
    let offset = 0;
    parts.forEach((p, i) => {
      model.message({ v: 1, type: "delta", seq: i + 1, panes: { a: { text: [offset, p], status: "streaming" } } });
      offset += p.length;
    });
    expect(frames.requested).toBe(1);
    expect(inPane(el, "a", ".llmgrid-pane-text").textContent).toBe("");
    frames.run();
    const text = parts.join("");
    expect(paneEl(el, "a").dataset.textLength).toBe(String(text.length));
    expect(renderedHtml(inPane(el, "a", ".llmgrid-pane-text"))).toBe(fullHtml(text));
  });

  it("spreads panes over frames once a frame's budget is spent, oldest first, losing nothing", () => {
    let t = 0;
    const panes = ["a", "b", "c"].map((id) => ({ id, name: id.toUpperCase() }));
    const { el, model, frames } = mount(
      { panes, snapshot: {}, run: { run_id: "r", status: "running" } },
      { frameBudgetMs: 8, budgetClock: () => (t += 5) - 5 }, // each pane write "takes" 5 ms
    );
    frames.run();
    const delta = (/** @type {number} */ seq, /** @type {number} */ at, /** @type {string} */ s) =>
      model.message({ v: 1, type: "delta", seq, panes: Object.fromEntries(["a", "b", "c"].map((id) => [id, { text: [at, s], status: "streaming" }])) });
    delta(1, 0, "one ");
    frames.run();
    // a and b fit in the budget; c waits for the next frame, which is already requested.
    expect(["a", "b", "c"].map((id) => paneEl(el, id).dataset.textLength)).toEqual(["4", "4", "0"]);
    expect(frames.pending.size).toBe(1);
    delta(2, 4, "two");
    frames.run();
    // c goes first now; then a, and b waits in turn.
    expect(["a", "b", "c"].map((id) => paneEl(el, id).dataset.textLength)).toEqual(["7", "4", "7"]);
    frames.run();
    for (const id of ["a", "b", "c"]) expect(renderedHtml(inPane(el, id, ".llmgrid-pane-text"))).toBe(fullHtml("one two"));
    expect(frames.pending.size).toBe(0);
  });

  it("reads packed deltas, whatever view of the bytes the comm hands over", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: { run_id: "r", status: "running" } });
    const bytes = (/** @type {unknown} */ msg) => new TextEncoder().encode(JSON.stringify(msg));
    const first = bytes({ v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "Grüße, "], status: "streaming" } } });
    model.emit("msg:custom", { v: 1, type: "packed" }, [new DataView(first.buffer)]);
    const second = bytes({ v: 1, type: "delta", seq: 2, panes: { a: { text: [7, "world"] } } });
    model.emit("msg:custom", { v: 1, type: "packed" }, [second.buffer]);
    frames.run();
    expect(inPane(el, "a", ".llmgrid-pane-text").textContent?.trim()).toBe("Grüße, world");
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    model.emit("msg:custom", { v: 1, type: "packed" }, []);
    expect(warn).toHaveBeenCalledOnce();
    warn.mockRestore();
  });

  it("asks the kernel for a snapshot when it missed deltas, at most once a second", () => {
    const { el, model, frames, clock } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: { run_id: "r", status: "running" } });
    const sync = () => model.sent.filter((m) => /** @type {any} */ (m).type === "sync").length;
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "abc"], status: "streaming" } } });
    expect(sync()).toBe(0);
    // Opened late: the next delta starts beyond what this view holds.
    model.message({ v: 1, type: "delta", seq: 5, panes: { a: { text: [10, "klm"] } } });
    model.message({ v: 1, type: "delta", seq: 6, panes: { a: { text: [13, "nop"] } } });
    expect(model.sent).toEqual([{ v: 1, type: "sync" }]);
    clock.t += 1001;
    model.message({ v: 1, type: "delta", seq: 7, panes: { a: { text: [16, "q"] } } });
    expect(sync()).toBe(2);
    frames.run();
    expect(paneEl(el, "a").dataset.stale).toBe("true");
    // The kernel's answer makes the pane whole.
    model.setTrait("snapshot", { a: { status: "streaming", text: "abcdefghijklmnopq", seq: 7 } });
    frames.run();
    expect(paneEl(el, "a").dataset.stale).toBeUndefined();
    expect(inPane(el, "a", ".llmgrid-pane-text").textContent?.trim()).toBe("abcdefghijklmnopq");
  });

  it("a stale pane is made whole by its final delta, and a finished run asks for nothing", () => {
    const { el, model, frames, clock } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: { run_id: "r", status: "running" } });
    model.message({ v: 1, type: "delta", seq: 3, panes: { a: { text: [4, "efg"], status: "streaming" } } });
    frames.run();
    expect(paneEl(el, "a").dataset.stale).toBe("true");
    model.message({ v: 1, type: "delta", seq: 4, panes: { a: { text: [0, "abcdefgh"], status: "done", final: true } } });
    frames.run();
    expect(paneEl(el, "a").dataset.stale).toBeUndefined();
    expect(inPane(el, "a", ".llmgrid-pane-text").textContent?.trim()).toBe("abcdefgh");
    model.setTrait("run", { run_id: "r", status: "done" });
    clock.t += 5000;
    model.message({ v: 1, type: "delta", seq: 9, panes: { a: { text: [50, "x"] } } });
    expect(model.sent).toEqual([{ v: 1, type: "sync" }]);
  });

  it("keeps settled blocks' DOM nodes across flushes instead of rebuilding the pane", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: {} });
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "# Head\n\nfirst para\n\nsecond"], status: "streaming" } } });
    frames.run();
    const h1 = inPane(el, "a", "h1");
    const header = inPane(el, "a", ".llmgrid-pane-header");
    model.message({ v: 1, type: "delta", seq: 2, panes: { a: { text: ["# Head\n\nfirst para\n\nsecond".length, " para\n\nthird"] } } });
    frames.run();
    expect(inPane(el, "a", "h1")).toBe(h1);
    expect(inPane(el, "a", ".llmgrid-pane-header")).toBe(header);
    expect(inPane(el, "a", ".llmgrid-pane-text").textContent).toContain("second para");
  });

  it("sends stop messages from the pane and footer buttons", () => {
    const { el, model, frames } = mount({
      panes: [{ id: "a", name: "A" }, { id: "b", name: "B" }],
      snapshot: { a: { status: "streaming", seq: 1 }, b: { status: "done", seq: 1 } },
      run: { run_id: "r", status: "running" },
    });
    const stopA = inPane(el, "a", ".llmgrid-pane-stop");
    const stopB = inPane(el, "b", ".llmgrid-pane-stop");
    expect(stopA.hidden).toBe(false);
    expect(stopB.hidden).toBe(true);
    stopA.click();
    expect(model.sent).toEqual([{ v: 1, type: "stop", pane: "a" }]);
    const stopAll = /** @type {HTMLButtonElement} */ (el.querySelector(".llmgrid-footer .llmgrid-stop"));
    expect(stopAll.disabled).toBe(false);
    stopAll.click();
    expect(model.sent.at(-1)).toEqual({ v: 1, type: "stop", pane: null });
    expect(model.sent.at(-1)).toEqual(fixture.stop_messages.run);
    model.setTrait("run", { run_id: "r", status: "cancelled" });
    model.message({ v: 1, type: "delta", seq: 2, panes: { a: { status: "cancelled" } } });
    frames.run();
    expect(stopAll.disabled).toBe(true);
    expect(stopA.hidden).toBe(true);
  });

  it("a blind run's vote bar: hidden while running, buttons once done, one vote sent, then the verdict and the names", () => {
    const blindPanes = [
      { id: "A", name: "Model A", model: "", route: "", kind: "model" },
      { id: "B", name: "Model B", model: "", route: "", kind: "model" },
    ];
    const { el, model, frames } = mount({
      panes: blindPanes,
      snapshot: { A: { status: "streaming", seq: 1 }, B: { status: "streaming", seq: 1 } },
      run: { run_id: "r", status: "running" },
      vote: {},
    });
    const bar = /** @type {HTMLElement} */ (el.querySelector(".llmgrid-vote"));
    expect(bar.hidden).toBe(true);
    expect(inPane(el, "A", ".llmgrid-route").hidden).toBe(true);
    const choices = [{ id: "A", label: "Model A" }, { id: "B", label: "Model B" }];
    model.setTrait("vote", { open: true, choices, winner: null, error: null });
    expect(bar.hidden).toBe(true); // the run has not ended
    model.setTrait("run", { run_id: "r", status: "done" });
    frames.run();
    expect(bar.hidden).toBe(false);
    const buttons = () => [...bar.querySelectorAll("button")].map((b) => /** @type {HTMLButtonElement} */ (b));
    expect(buttons().map((b) => b.textContent)).toEqual(["Model A is better", "Model B is better", "Tie", "Both bad"]);
    buttons()[1].click();
    buttons()[0].click(); // disabled after the first click: nothing more is sent
    expect(model.sent).toEqual([{ v: 1, type: "vote", choice: "B" }]);
    expect(buttons().every((b) => b.disabled)).toBe(true);
    model.setTrait("panes", blindPanes.map((p) => ({ ...p, name: `${p.name} · real-${p.id}`, model: `m-${p.id}`, route: "sim" })));
    model.setTrait("vote", { open: false, choices, winner: "B", error: null });
    frames.run();
    expect(bar.textContent).toBe("Voted:Model B is betternames shown above");
    expect(inPane(el, "B", ".llmgrid-pane-name").textContent).toBe("Model B · real-B");
    expect(inPane(el, "B", ".llmgrid-route").hidden).toBe(false);
  });

  it("with more than two panes the vote bar offers one 'best' per pane, and shows the kernel's refusal", () => {
    const choices = ["A", "B", "C"].map((id) => ({ id, label: `Model ${id}` }));
    const { el, model } = mount({
      panes: choices.map((c) => ({ id: c.id, name: c.label, model: "", route: "", kind: "model" })),
      snapshot: {},
      run: { run_id: "r", status: "done" },
      vote: { open: true, choices, winner: null, error: null },
    });
    const bar = /** @type {HTMLElement} */ (el.querySelector(".llmgrid-vote"));
    expect(bar.hidden).toBe(false);
    expect([...bar.querySelectorAll("button")].map((b) => b.textContent)).toEqual(
      ["Model A is best", "Model B is best", "Model C is best", "Tie", "All bad"]);
    model.setTrait("vote", { open: true, choices, winner: null, error: "turn 1 already has a vote" });
    expect(bar.querySelector(".llmgrid-vote-error")?.textContent).toBe("turn 1 already has a vote");
    model.setTrait("vote", {});
    expect(bar.hidden).toBe(true);
  });

  it("cleanup removes every listener, the DOM and pending frames", () => {
    const { el, model, frames, cleanup } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: {} });
    expect(model.listenerCount()).toBe(5);
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "x"] } } });
    cleanup();
    expect(model.listenerCount()).toBe(0);
    expect(el.children.length).toBe(0);
    expect(frames.run()).toBe(0);
  });

  it("ignores unknown versions and types with a warning, never throwing", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const { el, model, frames } = mount({ panes: [{ id: "gpt", name: "G" }], snapshot: {}, run: {} });
    for (const msg of fixture.ignored_messages) expect(() => model.message(msg)).not.toThrow();
    frames.run();
    expect(warn).toHaveBeenCalledTimes(fixture.ignored_messages.length);
    expect(paneEl(el, "gpt").dataset.textLength).toBe("0");
  });

  it("adds a pane when the panes trait grows, keeping the existing panes' DOM", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: { a: { text: "hello", seq: 1 } }, run: {} });
    const a = paneEl(el, "a");
    model.setTrait("panes", [{ id: "a", name: "A" }, { id: "m", name: "Master", kind: "master" }]);
    model.message({ v: 1, type: "delta", seq: 2, panes: { m: { text: [0, "sum"], status: "streaming" } } });
    frames.run();
    expect(paneEl(el, "a")).toBe(a);
    expect(renderedHtml(inPane(el, "m", ".llmgrid-pane-text"))).toBe("<p>sum</p>\n");
  });

  it("marks a streaming pane stalled after a second of silence and clears it on the next delta", () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    try {
      const { el, model, frames, clock } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: {} }, { tickMs: 100 });
      model.message({ v: 1, type: "delta", seq: 1, panes: { a: { status: "streaming", text: [0, "x"] } } });
      frames.run();
      clock.t += 900;
      vi.advanceTimersByTime(100);
      expect(el.querySelector(".llmgrid-stall")).toBeNull();
      clock.t += 300;
      vi.advanceTimersByTime(100);
      expect(inPane(el, "a", ".llmgrid-stall")?.textContent).toBe("stalled 1.2 s");
      model.message({ v: 1, type: "delta", seq: 2, panes: { a: { text: [1, "y"] } } });
      frames.run();
      expect(el.querySelector(".llmgrid-stall")).toBeNull();
      model.message({ v: 1, type: "delta", seq: 3, panes: { a: { status: "waiting" } } });
      frames.run();
      clock.t += 5000;
      vi.advanceTimersByTime(100);
      expect(el.querySelector(".llmgrid-stall")).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it("ticks the elapsed time locally while running and shows the kernel's value after", () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    try {
      const started = 1_000_000 - 2_000;
      const { el, model, frames, clock } = mount({ panes: [], snapshot: {}, run: { run_id: "r", status: "running", elapsed_s: 2, started_at: started } }, { tickMs: 100 });
      const elapsed = () => el.querySelector(".llmgrid-elapsed")?.textContent;
      expect(elapsed()).toBe("2.0 s");
      clock.t += 1500;
      vi.advanceTimersByTime(100);
      expect(elapsed()).toBe("3.5 s");
      model.setTrait("run", { run_id: "r", status: "done", elapsed_s: 3.2, started_at: started });
      frames.run();
      clock.t += 5000;
      vi.advanceTimersByTime(100);
      expect(elapsed()).toBe("3.2 s");
    } finally {
      vi.useRealTimers();
    }
  });

  it("opens reasoning while it streams and folds it once the answer starts", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: {} });
    const details = /** @type {HTMLDetailsElement} */ (inPane(el, "a", ".llmgrid-pane-reasoning"));
    expect(details.hidden).toBe(true);
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { reasoning: [0, "thinking <b>hard</b>"], status: "streaming" } } });
    frames.run();
    expect(details.hidden).toBe(false);
    expect(details.open).toBe(true);
    expect(inPane(el, "a", ".llmgrid-pane-reasoning-text").textContent).toBe("thinking <b>hard</b>");
    expect(details.querySelector("b")).toBeNull();
    const node = inPane(el, "a", ".llmgrid-pane-reasoning-text").firstChild;
    model.message({ v: 1, type: "delta", seq: 2, panes: { a: { reasoning: [20, " and long"] } } });
    model.message({ v: 1, type: "delta", seq: 3, panes: { a: { reasoning: [29, "."] } } });
    frames.run();
    expect(inPane(el, "a", ".llmgrid-pane-reasoning-text").firstChild).toBe(node);
    expect(node?.textContent).toBe("thinking <b>hard</b> and long.");
    model.message({ v: 1, type: "delta", seq: 4, panes: { a: { text: [0, "Answer"] } } });
    frames.run();
    expect(details.open).toBe(false);
  });

  it("shows a refusal streamed in two deltas as inert text above the answer, hidden when there is none", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }, { id: "b", name: "B" }], snapshot: {}, run: {} });
    const box = inPane(el, "a", ".llmgrid-pane-refusal");
    const body = inPane(el, "a", ".llmgrid-pane-refusal-text");
    expect(box.hidden).toBe(true);
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { reasoning: [0, "hmm"], status: "streaming" }, b: { text: [0, "Sure."], status: "streaming" } } });
    frames.run();
    expect(box.hidden).toBe(true);
    const first = "I can't help with that. ";
    const second = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">";
    model.message({ v: 1, type: "delta", seq: 2, panes: { a: { refusal: [0, first] } } });
    frames.run();
    expect(box.hidden).toBe(false);
    expect(body.textContent).toBe(first);
    const node = body.firstChild;
    model.message({ v: 1, type: "delta", seq: 3, panes: { a: { refusal: [first.length, second], status: "done" } } });
    frames.run();
    // Appended to the same text node; the markup is text, nothing was parsed or run.
    expect(body.firstChild).toBe(node);
    expect(body.childNodes).toHaveLength(1);
    expect(body.textContent).toBe(first + second);
    expect(paneEl(el, "a").querySelector("script, img, [onerror]")).toBeNull();
    expect(/** @type {any} */ (window).pwned).toBeUndefined();
    expect(inPane(el, "a", ".llmgrid-pane-refusal-label").textContent).toBe("Refused");
    expect(box.nextElementSibling?.classList.contains("llmgrid-pane-text")).toBe(true);
    expect(/** @type {HTMLDetailsElement} */ (inPane(el, "a", ".llmgrid-pane-reasoning")).open).toBe(false);
    expect(inPane(el, "b", ".llmgrid-pane-refusal").hidden).toBe(true);
    expect(inPane(el, "b", ".llmgrid-pane-refusal-text").textContent).toBe("");
  });

  it("marks a pane stale when a refusal delta was missed and asks for a snapshot", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: { run_id: "r", status: "running" } });
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { refusal: [0, "I won't "], status: "streaming" } } });
    model.message({ v: 1, type: "delta", seq: 3, panes: { a: { refusal: [18, "that."] } } });
    frames.run();
    expect(model.sent).toEqual([{ v: 1, type: "sync" }]);
    expect(paneEl(el, "a").dataset.stale).toBe("true");
    expect(inPane(el, "a", ".llmgrid-pane-refusal-text").textContent).toBe("I won't ");
    model.setTrait("snapshot", { a: { status: "streaming", refusal: "I won't help with that.", seq: 3 } });
    frames.run();
    expect(paneEl(el, "a").dataset.stale).toBeUndefined();
    expect(inPane(el, "a", ".llmgrid-pane-refusal-text").textContent).toBe("I won't help with that.");
  });

  it("shows an error banner under the partial text when a pane fails", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: {} });
    expect(el.querySelector(".llmgrid-pane-error")).toBeNull();
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "partial answer"], status: "streaming" } } });
    model.message({ v: 1, type: "delta", seq: 2, panes: { a: { status: "failed", error: { message: "HTTP 500 <script>", recoverable: false } } } });
    frames.run();
    const banner = inPane(el, "a", ".llmgrid-pane-error");
    expect(banner.textContent).toBe("HTTP 500 <script>");
    expect(renderedHtml(inPane(el, "a", ".llmgrid-pane-text"))).toBe("<p>partial answer</p>\n");
    expect(banner.previousElementSibling?.classList.contains("llmgrid-pane-text")).toBe(true);
    expect(paneEl(el, "a").dataset.status).toBe("failed");
  });

  it("renders search results with safe links, sanitised descriptions, analysis, then text", () => {
    const sc = scenario("stream_to_done");
    const { el } = mount({ panes: sc.initial.panes, run: sc.expected.run, snapshot: sc.expected.panes });
    const search = paneEl(el, "search");
    const titles = [...search.querySelectorAll(".llmgrid-result-title")];
    expect(titles.map((a) => a.textContent)).toEqual(sc.expected.panes.search.results.map((/** @type {any} */ r) => r.title));
    expect(titles[0].getAttribute("href")).toBe("https://en.wikipedia.org/wiki/TCP_congestion_control");
    expect(titles[0].getAttribute("rel")).toBe("noopener noreferrer");
    expect(titles[2].hasAttribute("href")).toBe(false);
    expect(search.querySelector(".llmgrid-result-desc strong")?.textContent).toBe("Slow start");
    expect(search.querySelector("script, img, [onclick], [onerror]")).toBeNull();
    expect(search.querySelectorAll(".llmgrid-analysis-item")).toHaveLength(2);
    const order = [...search.querySelectorAll(".llmgrid-results, .llmgrid-analysis, .llmgrid-pane-text")].map((n) => n.className.split(" ")[0]);
    expect(order).toEqual(["llmgrid-results", "llmgrid-analysis", "llmgrid-pane-text"]);
  });

  it("shows tool calls with pretty-printed arguments as text", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: {} });
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { tool_calls: [0, [{ id: "1", name: "search", arguments: '{"q":"<img src=x onerror=alert(1)>"}' }, { id: "2", name: "raw", arguments: "not json" }]] } } });
    frames.run();
    const args = [...paneEl(el, "a").querySelectorAll(".llmgrid-tool-call-args")].map((p) => p.textContent);
    expect(args).toEqual(['{\n  "q": "<img src=x onerror=alert(1)>"\n}', "not json"]);
    expect(paneEl(el, "a").querySelector("img")).toBeNull();
    expect(inPane(el, "a", ".llmgrid-tool-call-name").textContent).toBe("search");
  });

  it("leaves following the output to the browser: one content element, no scroll reads or writes", () => {
    // The body lays its single content element out bottom-up (styles.css), which keeps a pane
    // scrolled to the bottom there and one scrolled up in place; browser tests check both.
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: {} });
    const body = inPane(el, "a", ".llmgrid-pane-body");
    expect([...body.children].map((c) => c.className)).toEqual(["llmgrid-pane-content"]);
    /** @type {string[]} */
    const touched = [];
    for (const name of ["scrollTop", "scrollHeight", "clientHeight"]) {
      Object.defineProperty(body, name, {
        configurable: true,
        get: () => touched.push(`get ${name}`) && 0,
        set: () => touched.push(`set ${name}`),
      });
    }
    for (let seq = 1; seq <= 3; seq++) {
      model.message({ v: 1, type: "delta", seq, panes: { a: { text: [(seq - 1) * 8, "line ..\n\n"], status: "streaming" } } });
      frames.run();
    }
    expect(inPane(el, "a", ".llmgrid-pane-text").textContent).toContain("line");
    expect(touched).toEqual([]);
  });

  it("updates the metrics spans", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: {} });
    expect(inPane(el, "a", ".llmgrid-ttft").textContent).toBe("TTFT –");
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { metrics: { ttft_s: 0.4567, tokens: 12, tokens_per_s: 33.333 } } } });
    frames.run();
    expect(inPane(el, "a", ".llmgrid-ttft").textContent).toBe("TTFT 0.46 s");
    expect(inPane(el, "a", ".llmgrid-tokens").textContent).toBe("12 tok");
    expect(inPane(el, "a", ".llmgrid-tps").textContent).toBe("33.3 tok/s");
  });

  it("shows a pane's cost once its final metrics carry one, and the run's total in the footer", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }, { id: "b", name: "B" }], snapshot: {}, run: { run_id: "r", status: "running" } });
    model.message({ v: 1, type: "delta", seq: 1, panes: { a: { status: "streaming", text: [0, "Hi"], metrics: { tokens: 3 } } } });
    frames.run();
    const cost = inPane(el, "a", ".llmgrid-cost");
    const total = /** @type {HTMLElement} */ (el.querySelector(".llmgrid-total-cost"));
    expect(cost.hidden).toBe(true);
    expect(total.hidden).toBe(true);
    model.message({
      v: 1, type: "delta", seq: 2,
      panes: {
        a: { status: "done", final: true, text: [0, "Hi"], metrics: { tokens: 3, cost_usd: 0.0012, cost_source: "price-table" } },
        b: { status: "done", final: true, text: [0, "Yo"], metrics: { tokens: 2, cost_usd: null, cost_source: null } },
      },
      run: { total_cost_usd: 0.0012, cost_simulated: false },
    });
    frames.run();
    expect(cost.hidden).toBe(false);
    expect(cost.textContent).toBe("$0.0012");
    expect(cost.title).toContain("LiteLLM");
    expect(paneEl(el, "a").querySelector(".llmgrid-metrics")?.contains(cost)).toBe(true);
    // Unknown: nothing at all, never a guess.
    expect(inPane(el, "b", ".llmgrid-cost").hidden).toBe(true);
    expect(inPane(el, "b", ".llmgrid-cost").textContent).toBe("");
    expect(total.hidden).toBe(false);
    expect(total.textContent).toBe("total $0.0012");
  });

  it("labels a simulated cost as simulated, in the pane and in the footer", () => {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: { run_id: "r", status: "running" } });
    model.message({
      v: 1, type: "delta", seq: 1,
      panes: { a: { status: "done", final: true, text: [0, "Hi"], metrics: { cost_usd: 0.0005, cost_source: "simulated" } } },
    });
    model.setTrait("run", { run_id: "r", status: "done", total_cost_usd: 0.0005, cost_simulated: true });
    frames.run();
    const cost = inPane(el, "a", ".llmgrid-cost");
    expect(cost.textContent).toBe("sim $0.0005");
    expect(cost.dataset.costSource).toBe("simulated");
    expect(cost.title).toContain("not a real cost");
    const total = /** @type {HTMLElement} */ (el.querySelector(".llmgrid-total-cost"));
    expect(total.textContent).toBe("total sim $0.0005");
    expect(total.title).toContain("simulated");
  });
});

describe("performance", () => {
  /** @type {string} */
  let answer;
  beforeEach(() => {
    const para = "Slow start grows the **congestion window** each round trip; see `cwnd` and [RFC 5681](https://www.rfc-editor.org/rfc/rfc5681). ";
    const blocks = [];
    let i = 0;
    while (blocks.join("").length < 100_000) {
      i++;
      if (i % 7 === 0) blocks.push("```python\n" + "for seg in window:\n    send(seg)\n".repeat(40) + "```\n\n");
      else if (i % 5 === 0) blocks.push(`- item ${i}\n- item ${i + 1}\n\n`);
      else blocks.push(para.repeat(3) + "\n\n");
    }
    answer = blocks.join("").slice(0, 100_000);
  });

  /**
   * Stream `text` in `n` deltas, a frame every `perFrame`; fails as soon as `budgetMs` is spent
   * (the loop is synchronous, so the test timeout could not stop a quadratic regression).
   * @param {string} text @param {number} n @param {number} perFrame @param {number} budgetMs
   */
  function stream(text, n, perFrame, budgetMs) {
    const { el, model, frames } = mount({ panes: [{ id: "a", name: "A" }], snapshot: {}, run: { run_id: "r", status: "running" } });
    const size = Math.ceil(text.length / n);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      model.message({ v: 1, type: "delta", seq: i + 1, panes: { a: { text: [i * size, text.slice(i * size, (i + 1) * size)], status: "streaming" } } });
      if ((i + 1) % perFrame === 0) frames.run();
      if (performance.now() - t0 > budgetMs) throw new Error(`over budget: ${i + 1} of ${n} deltas took more than ${budgetMs} ms`);
    }
    frames.run();
    const ms = performance.now() - t0;
    expect(paneEl(el, "a").dataset.textLength).toBe(String(text.length));
    expect(renderedHtml(inPane(el, "a", ".llmgrid-pane-text"))).toBe(fullHtml(text));
    return ms;
  }

  it("applies 2,000 deltas totalling 100 KB quickly, even with a frame per delta", () => {
    // Generous budgets for a loaded 2-core CI box; a full re-render per delta takes minutes.
    const everyDelta = stream(answer, 2000, 1, 15000);
    const batched = stream(answer, 2000, 10, 5000);
    console.info(`perf: 2000 deltas / ${answer.length} chars: ${everyDelta.toFixed(0)} ms with a flush per delta, ${batched.toFixed(0)} ms with a flush per 10 deltas (jsdom)`);
  });

  it("streams one 100 KB code block without re-rendering from scratch each time", () => {
    const code = "```js\n" + "const x = compute(a, b); // step\n".repeat(3100).slice(0, 99_990);
    const ms = stream(code, 2000, 1, 5000);
    console.info(`perf: 2000 deltas into one open ${code.length}-char code fence: ${ms.toFixed(0)} ms with a flush per delta (jsdom)`);
  });
});
