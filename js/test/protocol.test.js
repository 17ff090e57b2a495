import { describe, expect, it } from "vitest";
import {
  applyPaneDelta,
  emptyMetrics,
  emptyPaneState,
  emptyRun,
  formatCost,
  mergeMetrics,
  mergeRun,
  normalizePaneState,
  normalizePanes,
  normalizeVote,
  parseMessage,
  resolveAppend,
  stopMessage,
  syncMessage,
  unpackMessage,
  voteMessage,
} from "../src/protocol.js";
import fixture from "./fixtures/messages.json";

/** @param {Partial<import("../src/protocol.js").LocalPaneState>} over */
const pane = (over = {}) => ({ ...emptyPaneState(), seq: 0, ...over });

describe("applyPaneDelta", () => {
  it("appends when the offset equals the current length", () => {
    const s = applyPaneDelta(pane({ text: "Hello" }), { text: [5, ", world"] }, 1);
    expect(s.text).toBe("Hello, world");
    expect(s.seq).toBe(1);
    expect(s.stale).toBe(false);
  });

  it("appends only the part beyond the current length when the offset overlaps", () => {
    const s = applyPaneDelta(pane({ text: "Hello, wo" }), { text: [7, "world!"] }, 1);
    expect(s.text).toBe("Hello, world!");
  });

  it("appends nothing when the overlap covers the whole payload", () => {
    const s = applyPaneDelta(pane({ text: "Hello, world" }), { text: [0, "Hello"] }, 1);
    expect(s.text).toBe("Hello, world");
    expect(s.stale).toBe(false);
  });

  it("marks the pane stale and keeps its text on a gap", () => {
    const s = applyPaneDelta(pane({ text: "abc" }), { text: [5, "fgh"], status: "streaming" }, 1);
    expect(s.text).toBe("abc");
    expect(s.stale).toBe(true);
    expect(s.status).toBe("streaming");
  });

  it("clears stale only on a final delta without a gap", () => {
    const stale = pane({ text: "ab", stale: true, seq: 1 });
    expect(applyPaneDelta(stale, { text: [2, "c"] }, 2).stale).toBe(true);
    expect(applyPaneDelta(stale, { text: [0, "abcd"], final: true }, 2)).toMatchObject({ text: "abcd", stale: false });
    expect(applyPaneDelta(stale, { text: [0, "abcd"], reasoning: [3, "x"], final: true }, 2).stale).toBe(true);
  });

  it("ignores a delta whose seq is not newer than the pane's", () => {
    const before = pane({ text: "abc", seq: 7 });
    expect(applyPaneDelta(before, { text: [3, "d"] }, 7)).toBe(before);
    expect(applyPaneDelta(before, { text: [3, "d"] }, 3)).toBe(before);
    expect(applyPaneDelta(before, { text: [3, "d"] }, 8).text).toBe("abcd");
  });

  it("applies the offset rule to reasoning and to list fields", () => {
    let s = pane({ reasoning: "think", analysis: ["a"] });
    s = applyPaneDelta(s, { reasoning: [3, "nking"], analysis: [0, ["a", "b"]], results: [0, [{ title: "t", url: "https://x.test", description: "d" }]] }, 1);
    expect(s.reasoning).toBe("thinking");
    expect(s.analysis).toEqual(["a", "b"]);
    expect(s.results).toHaveLength(1);
    s = applyPaneDelta(s, { tool_calls: [2, [{ id: "c", name: "f", arguments: "{}" }]] }, 2);
    expect(s.tool_calls).toEqual([]);
    expect(s.stale).toBe(true);
  });

  it("applies the offset rule to the refusal, gap included", () => {
    /** @type {[string, number, string][]} */
    const heard = [];
    const onAppend = (/** @type {string} */ f, /** @type {number} */ at, /** @type {string} */ x) => heard.push([f, at, x]);
    let s = applyPaneDelta(pane(), { refusal: [0, "I can't "] }, 1, onAppend);
    s = applyPaneDelta(s, { refusal: [4, "n't help."] }, 2, onAppend);
    expect(s).toMatchObject({ refusal: "I can't help.", text: "", stale: false });
    expect(heard).toEqual([["refusal", 0, "I can't "], ["refusal", 8, "help."]]);
    const gap = applyPaneDelta(s, { refusal: [20, "x"] }, 3);
    expect(gap).toMatchObject({ refusal: "I can't help.", stale: true });
    expect(applyPaneDelta(gap, { refusal: [0, "I can't help. Sorry."], final: true }, 4)).toMatchObject({ refusal: "I can't help. Sorry.", stale: false });
    expect(applyPaneDelta(gap, { text: [0, ""], refusal: [30, "y"], final: true }, 4).stale).toBe(true);
    expect(normalizePaneState({ refusal: "no" }).refusal).toBe("no");
    expect(normalizePaneState({}).refusal).toBe("");
  });

  it("sets status and error, and merges metrics", () => {
    let s = applyPaneDelta(pane(), { status: "retrying", error: { message: "503", recoverable: true }, metrics: { tokens: 3 } }, 1);
    expect(s.status).toBe("retrying");
    expect(s.error).toEqual({ message: "503", recoverable: true });
    s = applyPaneDelta(s, { error: null, metrics: { ttft_s: 0.5 } }, 2);
    expect(s.error).toBeNull();
    expect(s.metrics).toMatchObject({ tokens: 3, ttft_s: 0.5 });
  });

  it("does not mutate its input", () => {
    const before = pane({ text: "a", analysis: ["x"] });
    const copy = structuredClone(before);
    applyPaneDelta(before, { text: [1, "b"], analysis: [1, ["y"]], status: "done" }, 1);
    expect(before).toEqual(copy);
  });

  it("ignores malformed patches without throwing", () => {
    const before = pane({ text: "a" });
    for (const bad of [{ text: "b" }, { text: [1] }, { text: ["1", "b"] }, { text: [-1, "b"] }, { text: [1, 5] }, { status: "exploded" }, { metrics: "fast" }]) {
      const s = applyPaneDelta(before, bad, 1);
      expect(s.text).toBe("a");
      expect(s.status).toBe("queued");
      expect(s.stale).toBe(false);
    }
  });
});

describe("resolveAppend", () => {
  const isString = (/** @type {unknown} */ x) => typeof x === "string";
  it.each([
    [3, [3, "de"], { gap: false, extra: "de" }],
    [4, [3, "de"], { gap: false, extra: "e" }],
    [5, [3, "de"], { gap: false, extra: null }],
    [2, [3, "de"], { gap: true, extra: null }],
  ])("length %i, patch %j", (len, patch, want) => {
    expect(resolveAppend(len, patch, /** @type {(x: unknown) => x is string} */ (isString))).toEqual(want);
  });
});

describe("parseMessage", () => {
  it("accepts a v1 delta", () => {
    expect(parseMessage({ v: 1, type: "delta", seq: 1, panes: {} }).ok).toBe(true);
  });

  it("rejects every message in the fixtures' ignored list", () => {
    for (const msg of fixture.ignored_messages) expect(parseMessage(msg).ok, JSON.stringify(msg)).toBe(false);
  });
});

describe("normalisation", () => {
  it("fills a partial snapshot pane with defaults", () => {
    const s = normalizePaneState({ status: "done", text: "x", seq: 4, metrics: { tokens: 2 } });
    expect(s).toMatchObject({ status: "done", text: "x", seq: 4, reasoning: "", tool_calls: [], error: null, stale: false });
    expect(s.metrics).toEqual({ ...emptyMetrics(), tokens: 2 });
  });

  it("drops panes without an id and duplicate ids, defaulting the kind", () => {
    const panes = normalizePanes([{ id: "a", name: "A", kind: "weird" }, { name: "no id" }, { id: "a", name: "dup" }]);
    expect(panes).toEqual([{ id: "a", name: "A", model: "", route: "", kind: "model" }]);
  });

  it("keeps metrics it is not given", () => {
    const base = { ttft_s: 0.2, tokens: 5, tokens_per_s: 10, elapsed_s: 1, n_chunks: 5, cost_usd: null, cost_source: null };
    const m = mergeMetrics(base, { tokens: 6 });
    expect(m).toEqual({ ...base, tokens: 6 });
  });

  it("takes a pane's cost and its source, and drops a malformed one", () => {
    const m = mergeMetrics(emptyMetrics(), { cost_usd: 0.0012, cost_source: "price-table" });
    expect(m).toMatchObject({ cost_usd: 0.0012, cost_source: "price-table" });
    expect(mergeMetrics(m, { tokens: 9 })).toMatchObject({ cost_usd: 0.0012, cost_source: "price-table" });
    for (const bad of [{ cost_usd: -1 }, { cost_usd: "0.1" }, { cost_usd: Infinity }, { cost_usd: null }]) {
      expect(mergeMetrics(m, bad).cost_usd, JSON.stringify(bad)).toBe(null);
    }
    expect(mergeMetrics(m, { cost_source: "guess" }).cost_source).toBe(null);
  });

  it("merges the run's total cost", () => {
    const r = mergeRun(emptyRun(), { total_cost_usd: 0.25, cost_simulated: true });
    expect(r).toMatchObject({ total_cost_usd: 0.25, cost_simulated: true });
    expect(mergeRun(r, { elapsed_s: 3 })).toMatchObject({ total_cost_usd: 0.25, cost_simulated: true });
    expect(mergeRun(r, { total_cost_usd: "lots" }).total_cost_usd).toBe(null);
  });

  it("formats a cost as the kernel's reports do", () => {
    expect(formatCost(0.0012)).toBe("$0.0012");
    expect(formatCost(0.0012, "simulated")).toBe("sim $0.0012");
    expect(formatCost(0.000021)).toBe("$0.000021");
    expect(formatCost(0)).toBe("$0");
    expect(formatCost(1234.5)).toBe("$1,234.50");
    expect(formatCost(null)).toBe("");
    expect(formatCost(NaN)).toBe("");
  });

  it("builds the stop messages the fixtures list", () => {
    expect(stopMessage("gpt")).toEqual(fixture.stop_messages.pane);
    expect(stopMessage(null)).toEqual(fixture.stop_messages.run);
  });
});

describe("packed messages", () => {
  const msg = { v: 1, type: "delta", seq: 1, panes: { a: { text: [0, "é €"] } } };
  const bytes = new TextEncoder().encode(JSON.stringify(msg));

  it("unpacks from an ArrayBuffer, a DataView or a Uint8Array at an offset", () => {
    expect(unpackMessage({ v: 1, type: "packed" }, [bytes.buffer])).toEqual(msg);
    expect(unpackMessage({ v: 1, type: "packed" }, [new DataView(bytes.buffer)])).toEqual(msg);
    const padded = new Uint8Array(bytes.length + 8);
    padded.set(bytes, 5);
    expect(unpackMessage({ v: 1, type: "packed" }, [padded.subarray(5, 5 + bytes.length)])).toEqual(msg);
  });

  it("passes other messages through and refuses a packed one without a buffer", () => {
    expect(unpackMessage(msg, [])).toBe(msg);
    expect(unpackMessage({ v: 2, type: "packed" }, [])).toEqual({ v: 2, type: "packed" });
    expect(() => unpackMessage({ v: 1, type: "packed" }, [])).toThrow(/buffer/);
    expect(syncMessage()).toEqual({ v: 1, type: "sync" });
  });
});

describe("votes", () => {
  const choices = [{ id: "A", label: "Model A" }, { id: "B", label: "Model B" }];
  it("reads the vote trait, refusing what cannot be voted on", () => {
    expect(normalizeVote({})).toBeNull();
    expect(normalizeVote(null)).toBeNull();
    expect(normalizeVote({ open: true, choices: [choices[0]] })).toBeNull();
    expect(normalizeVote({ open: true, choices: [...choices, { id: 3 }, "x"] })).toEqual(
      { open: true, choices, winner: null, error: null });
    expect(normalizeVote({ open: true, choices, winner: "B" })).toEqual({ open: false, choices, winner: "B", error: null });
    expect(normalizeVote({ open: true, choices, winner: "both_bad" })?.winner).toBe("both_bad");
    expect(normalizeVote({ open: true, choices, winner: "Z" })?.winner).toBeNull();
    expect(normalizeVote({ open: false, choices, error: "no" })).toEqual({ open: false, choices, winner: null, error: "no" });
  });
  it("sends a vote as {v, type: 'vote', choice}", () => {
    expect(voteMessage("tie")).toEqual({ v: 1, type: "vote", choice: "tie" });
  });
});
