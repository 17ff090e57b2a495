// The view's model of the grid: pane specs, pane states and the run, plus which of them changed
// since the DOM was last written. Pure reducers over plain values; the Store only remembers the
// latest value and the dirty set so the frame scheduler can write each pane at most once a frame.

import {
  applyPaneDelta,
  emptyPaneState,
  emptyRun,
  mergeRun,
  normalizePaneState,
  normalizePanes,
} from "./protocol.js";

/**
 * @typedef {import("./protocol.js").PaneSpec} PaneSpec
 * @typedef {import("./protocol.js").LocalPaneState} LocalPaneState
 * @typedef {import("./protocol.js").RunState} RunState
 * @typedef {import("./protocol.js").DeltaMessage} DeltaMessage
 * @typedef {{panes: PaneSpec[], states: Record<string, LocalPaneState>, run: RunState}} GridState
 * @typedef {{field: import("./protocol.js").TextField, at: number, extra: string}} TextAppend
 * A reduction's result. `textAppends` lists, per pane, what was appended to its text, its
 * reasoning and its refusal; `textReplaced` says the changed panes' texts were replaced (a
 * snapshot, a new run).
 * @typedef {{state: GridState, changedPanes: string[], runChanged: boolean,
 *   textAppends?: Record<string, TextAppend[]>, textReplaced?: boolean}} Reduction
 */

/**
 * What `appends` add to a string of `from` characters when they continue it without a gap and
 * bring it to `to` characters, else null (the caller then reads the whole string).
 * @param {TextAppend[]} appends @param {number} from @param {number} to
 * @returns {string | null}
 */
export function continuation(appends, from, to) {
  let at = from;
  for (const a of appends) {
    if (a.at !== at) return null;
    at += a.extra.length;
  }
  if (appends.length === 0 || at !== to) return null;
  return appends.length === 1 ? appends[0].extra : appends.map((a) => a.extra).join("");
}

/** @returns {GridState} */
export function emptyGridState() {
  return { panes: [], states: {}, run: emptyRun() };
}

/**
 * Replace pane states from a snapshot. A pane is replaced when the snapshot includes at least
 * every delta we applied (`seq` not older), or when ours is stale (a delta was missed); otherwise
 * the deltas we already hold are newer and we keep them.
 * @param {GridState} state @param {unknown} snapshot @returns {Reduction}
 */
export function reduceSnapshot(state, snapshot) {
  /** @type {string[]} */
  const changedPanes = [];
  if (typeof snapshot !== "object" || snapshot === null || Array.isArray(snapshot)) {
    return { state, changedPanes, runChanged: false };
  }
  const states = { ...state.states };
  for (const [id, raw] of Object.entries(snapshot)) {
    const incoming = normalizePaneState(raw);
    const current = states[id];
    if (current && !current.stale && incoming.seq < current.seq) continue;
    states[id] = incoming;
    changedPanes.push(id);
  }
  return { state: { ...state, states }, changedPanes, runChanged: false, textReplaced: true };
}

/**
 * Apply a validated delta message to every pane it names (panes not yet known start empty).
 * @param {GridState} state @param {DeltaMessage} msg @returns {Reduction}
 */
export function reduceDelta(state, msg) {
  /** @type {string[]} */
  const changedPanes = [];
  let states = { ...state.states };
  let textReplaced = false;
  const newRunId = msg.run?.run_id;
  if (typeof newRunId === "string" && newRunId !== state.run.run_id) {
    changedPanes.push(...Object.keys(states));
    states = {};
    textReplaced = true;
  }
  /** @type {Record<string, TextAppend[]>} */
  const textAppends = {};
  for (const [id, delta] of Object.entries(msg.panes)) {
    const current = states[id] ?? emptyPaneState();
    const next = applyPaneDelta(current, delta, msg.seq, (field, at, extra) => {
      (textAppends[id] ??= []).push({ field, at, extra });
    });
    if (next === current) continue;
    states[id] = next;
    if (!changedPanes.includes(id)) changedPanes.push(id);
  }
  let run = state.run;
  let runChanged = false;
  if (msg.run) {
    run = mergeRun(state.run, msg.run);
    runChanged = true;
  }
  return { state: { ...state, states, run }, changedPanes, runChanged, textAppends, textReplaced };
}

/**
 * Replace the run. A new run_id starts a new sequence space, so the pane states of the previous
 * run are dropped (the snapshot that comes with or after the new run refills them).
 * @param {GridState} state @param {unknown} run @returns {Reduction}
 */
export function reduceRun(state, run) {
  const next = mergeRun(emptyRun(), run);
  if (next.run_id !== state.run.run_id) {
    return {
      state: { ...state, run: next, states: {} },
      changedPanes: Object.keys(state.states),
      runChanged: true,
      textReplaced: true,
    };
  }
  return { state: { ...state, run: next }, changedPanes: [], runChanged: true };
}

/** @param {GridState} state @param {unknown} panes @returns {GridState} */
export function reducePanes(state, panes) {
  return { ...state, panes: normalizePanes(panes) };
}

/** @param {GridState} state @param {string} id @returns {LocalPaneState} */
export function paneState(state, id) {
  return state.states[id] ?? emptyPaneState();
}

/** Holds the current GridState and what changed since the last `takeDirty()`. */
export class Store {
  /** @param {GridState} [initial] */
  constructor(initial) {
    /** @type {GridState} */
    this.state = initial ?? emptyGridState();
    /** @type {Set<string>} */
    this.dirtyPanes = new Set();
    this.dirtyRun = false;
    this.dirtyLayout = false;
    /** Time (ms, caller's clock) each pane last received anything; drives the stall marker. */
    /** @type {Map<string, number>} */
    this.lastActivity = new Map();
    /** Per pane, what was appended to its text, reasoning and refusal since the view last took it. */
    /** @type {Map<string, TextAppend[]>} */
    this.textAppends = new Map();
  }

  /** @param {Reduction} r @param {number} [now] */
  #commit(r, now) {
    this.state = r.state;
    for (const id of r.changedPanes) {
      this.dirtyPanes.add(id);
      if (now !== undefined) this.lastActivity.set(id, now);
      if (r.textReplaced) this.textAppends.delete(id);
    }
    for (const [id, appends] of Object.entries(r.textAppends ?? {})) {
      const log = this.textAppends.get(id);
      if (log) log.push(...appends);
      else this.textAppends.set(id, appends);
    }
    if (r.runChanged) this.dirtyRun = true;
  }

  /** @param {unknown} panes */
  setPanes(panes) {
    this.state = reducePanes(this.state, panes);
    this.dirtyLayout = true;
  }

  /** @param {unknown} snapshot */
  setSnapshot(snapshot) {
    this.#commit(reduceSnapshot(this.state, snapshot));
  }

  /** @param {unknown} run */
  setRun(run) {
    const r = reduceRun(this.state, run);
    if (r.changedPanes.length) this.lastActivity.clear();
    this.#commit(r);
  }

  /** @param {DeltaMessage} msg @param {number} now */
  applyDelta(msg, now) {
    this.#commit(reduceDelta(this.state, msg), now);
  }

  /**
   * What was appended to a pane's text, reasoning and refusal since the last call (oldest first).
   * @param {string} id @returns {TextAppend[]}
   */
  takeTextAppends(id) {
    const log = this.textAppends.get(id);
    if (!log) return [];
    this.textAppends.delete(id);
    return log;
  }

  /** @returns {{panes: Set<string>, run: boolean, layout: boolean}} */
  takeDirty() {
    const out = { panes: this.dirtyPanes, run: this.dirtyRun, layout: this.dirtyLayout };
    this.dirtyPanes = new Set();
    this.dirtyRun = false;
    this.dirtyLayout = false;
    return out;
  }

  hasDirty() {
    return this.dirtyPanes.size > 0 || this.dirtyRun || this.dirtyLayout;
  }
}
