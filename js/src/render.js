// The grid: pane views in display order (master panes span the full width below the others),
// the run footer, and the flush that writes a Store's dirty state into them.

import { setText } from "./morph.js";
import { PaneView, h } from "./pane.js";
import { formatCost, normalizeVote } from "./protocol.js";
import { paneState } from "./state.js";

/**
 * @typedef {import("./protocol.js").PaneSpec} PaneSpec
 * @typedef {import("./protocol.js").RunState} RunState
 * @typedef {import("./protocol.js").VoteState} VoteState
 * @typedef {import("./state.js").Store} Store
 */

/**
 * Milliseconds of pane writes per animation frame before the rest waits for the next frame.
 * A pane update costs about 0.3-1 ms (benchmarks/bench_render.py), so 8 streaming panes take one
 * or two frames and 30 a few, and a frame never grows into a long task however many panes
 * stream. A pane that waited a frame takes in the text that arrived meanwhile; nothing is lost.
 */
export const FRAME_BUDGET_MS = 4;

/**
 * The buttons of a vote bar: with two panes "Model A is better / Model B is better / Tie / Both
 * bad", with more one "is best" per pane, then "Tie" and "All bad".
 * @param {VoteState} vote @returns {{choice: string, text: string}[]}
 */
export function voteButtons(vote) {
  const pair = vote.choices.length === 2;
  return [
    ...vote.choices.map((c) => ({ choice: c.id, text: `${c.label} is ${pair ? "better" : "best"}` })),
    { choice: "tie", text: "Tie" },
    { choice: "both_bad", text: pair ? "Both bad" : "All bad" },
  ];
}

/** @param {number} seconds */
export function formatElapsed(seconds) {
  if (!(seconds >= 0)) return "0.0 s";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.floor(seconds % 60);
  return `${m}:${String(s).padStart(2, "0")} min`;
}

/**
 * Seconds since the run started as seen now: from `started_at` (the kernel's epoch ms) when it is
 * plausible, never less than the last elapsed time the kernel reported plus the local time since.
 * @param {RunState} run @param {number} receivedAt local ms when `run` arrived @param {number} now
 */
export function liveElapsed(run, receivedAt, now) {
  if (run.status !== "running") return run.elapsed_s;
  const reported = run.elapsed_s + Math.max(0, now - receivedAt) / 1000;
  if (run.started_at > 0) {
    const fromClock = (now - run.started_at) / 1000;
    // A kernel clock far off ours (remote kernel) makes started_at useless; fall back then.
    if (fromClock >= run.elapsed_s - 1 && fromClock <= reported + 5) return Math.max(fromClock, run.elapsed_s);
  }
  return reported;
}

export class GridView {
  /**
   * @param {HTMLElement} host
   * @param {{
   *   onStop: (paneId: string | null) => void, onVote?: (choice: string) => void, now?: () => number,
   *   frameBudgetMs?: number, budgetClock?: () => number,
   * }} options
   */
  constructor(host, options) {
    this.onStop = options.onStop;
    this.onVote = options.onVote ?? (() => {});
    /** @type {VoteState | null} */
    this.vote = null;
    this.now = options.now ?? (() => Date.now());
    this.frameBudgetMs = options.frameBudgetMs ?? FRAME_BUDGET_MS;
    this.budgetClock = options.budgetClock ?? (() => performance.now());
    /** Dirty panes not written yet, in the order they will be (insertion order). */
    /** @type {Set<string>} */
    this.deferred = new Set();
    /** @type {Map<string, PaneView>} */
    this.views = new Map();
    this.runReceivedAt = this.now();
    this.createdAt = this.now();
    this.stopRequested = false;

    this.root = h("div", "llmgrid-root");
    this.root.dataset.runStatus = "done";
    this.promptEl = h("div", "llmgrid-prompt");
    this.promptEl.hidden = true;
    this.grid = h("div", "llmgrid-grid");
    this.footer = h("footer", "llmgrid-footer");
    this.runStatusEl = h("span", "llmgrid-badge llmgrid-run-status");
    this.elapsedEl = h("span", "llmgrid-elapsed", "0.0 s");
    this.elapsedEl.title = "elapsed";
    this.totalTokensEl = h("span", "llmgrid-total-tokens", "0 tok");
    this.totalTokensEl.title = "total tokens";
    this.totalCostEl = h("span", "llmgrid-total-cost");
    this.totalCostEl.hidden = true;
    this.stopButton = h("button", "llmgrid-stop", "Stop");
    this.stopButton.type = "button";
    this.stopButton.title = "Stop the whole run";
    this.stopButton.disabled = true;
    this.stopButton.addEventListener("click", this.#handleStop);
    this.footer.append(this.runStatusEl, this.elapsedEl, this.totalTokensEl, this.totalCostEl, this.stopButton);
    // A blind run's verdict, once it has finished: which answer is better, before the names show.
    this.voteEl = h("div", "llmgrid-vote");
    this.voteEl.hidden = true;
    this.voteEl.setAttribute("role", "group");
    this.voteEl.setAttribute("aria-label", "Vote: which answer is better?");
    this.voteEl.addEventListener("click", this.#handleVote);
    this.root.append(this.promptEl, this.grid, this.voteEl, this.footer);
    host.appendChild(this.root);
  }

  #handleStop = () => {
    this.stopRequested = true;
    this.stopButton.disabled = true;
    this.stopButton.textContent = "Stopping…";
    this.onStop(null);
  };

  /** @param {string} paneId */
  #stopPane = (paneId) => this.onStop(paneId);

  /** @param {MouseEvent} e */
  #handleVote = (e) => {
    const target = e.target instanceof Element ? e.target.closest("button[data-choice]") : null;
    if (!(target instanceof HTMLButtonElement) || target.disabled || !this.vote?.open) return;
    const choice = target.dataset.choice ?? "";
    for (const b of this.voteEl.querySelectorAll("button")) b.disabled = true;
    target.setAttribute("aria-pressed", "true");
    this.onVote(choice);
  };

  /**
   * Show the vote bar (trait `vote`): buttons while open and the run has ended, the verdict after.
   * @param {unknown} raw
   */
  setVote(raw) {
    this.vote = normalizeVote(raw);
    this.#renderVote();
  }

  #renderVote() {
    const vote = this.vote;
    const ended = this.root.dataset.runStatus !== "running";
    this.voteEl.hidden = vote === null || !ended;
    if (vote === null) {
      this.voteEl.replaceChildren();
      return;
    }
    const buttons = voteButtons(vote);
    const label = h("span", "llmgrid-vote-label", vote.winner === null ? "Which answer is better?" : "Voted:");
    const els = buttons.map((b) => {
      const button = h("button", "llmgrid-vote-button", b.text);
      button.type = "button";
      button.dataset.choice = b.choice;
      button.disabled = !vote.open;
      button.setAttribute("aria-pressed", String(vote.winner === b.choice));
      return button;
    });
    const children = vote.winner === null ? [label, ...els] : [label, ...els.filter((b) => b.dataset.choice === vote.winner)];
    if (vote.winner !== null) children.push(h("span", "llmgrid-vote-note", "names shown above"));
    if (vote.error) children.push(h("span", "llmgrid-vote-error", vote.error));
    this.voteEl.dataset.voted = String(vote.winner !== null);
    this.voteEl.replaceChildren(...children);
  }

  /**
   * A citation [n] in the master view refers to the n-th model pane: bring it into view.
   * @param {number} n
   */
  #cite = (n) => {
    const models = [...this.views.values()].filter((v) => !v.el.classList.contains("llmgrid-kind-master"));
    const target = models[n - 1];
    if (!target) return;
    target.el.scrollIntoView?.({ block: "nearest", behavior: "smooth" });
    target.el.classList.add("llmgrid-cited");
    setTimeout(() => target.el.classList.remove("llmgrid-cited"), 1200);
  };

  /** @param {PaneSpec[]} panes */
  #layout(panes) {
    const wanted = new Set(panes.map((p) => p.id));
    for (const [id, view] of this.views) {
      if (!wanted.has(id)) {
        view.destroy();
        this.views.delete(id);
      }
    }
    // Masters go last so they span the width below the panes they summarise.
    const ordered = [...panes.filter((p) => p.kind !== "master"), ...panes.filter((p) => p.kind === "master")];
    /** @type {HTMLElement[]} */
    const els = [];
    for (const spec of ordered) {
      let view = this.views.get(spec.id);
      if (view) view.setSpec(spec);
      else {
        view = new PaneView(spec, { onStop: this.#stopPane, onCite: this.#cite });
        this.views.set(spec.id, view);
      }
      els.push(view.el);
    }
    // Re-append in order only if it differs: moving a node resets its scroll position.
    const current = Array.from(this.grid.children);
    if (current.length !== els.length || current.some((el, i) => el !== els[i])) this.grid.replaceChildren(...els);
    this.grid.dataset.paneCount = String(ordered.filter((p) => p.kind !== "master").length);
  }

  /** @param {RunState} run */
  #updateRun(run) {
    this.runReceivedAt = this.now();
    this.root.dataset.runStatus = run.status;
    setText(this.runStatusEl, run.status);
    this.runStatusEl.className = `llmgrid-badge llmgrid-run-status llmgrid-run-${run.status}`;
    setText(this.totalTokensEl, `${run.total_tokens} tok`);
    const cost = formatCost(run.total_cost_usd, run.cost_simulated ? "simulated" : null);
    setText(this.totalCostEl, cost ? `total ${cost}` : "");
    this.totalCostEl.hidden = !cost;
    this.totalCostEl.title = run.cost_simulated
      ? "total cost of the panes with a known cost; a simulated price is in it (not a real cost)"
      : "total cost of the panes with a known cost";
    if (run.status !== "running") this.stopRequested = false;
    // A kernel blocked waiting for the run cannot receive clicks: say how to stop it instead.
    this.root.dataset.stoppable = String(run.stoppable);
    this.stopButton.disabled = run.status !== "running" || this.stopRequested || !run.stoppable;
    this.stopButton.title = run.stoppable
      ? "Stop the whole run"
      : "The kernel is waiting for this run: interrupt the kernel (■) to stop it, or use --background for live Stop buttons";
    if (!this.stopRequested) setText(this.stopButton, run.stoppable || run.status !== "running" ? "Stop" : "Interrupt kernel to stop");
    setText(this.promptEl, run.prompt);
    this.promptEl.title = run.prompt;
    this.promptEl.hidden = !run.prompt;
    this.voteEl.hidden = this.vote === null || run.status === "running";
  }

  /**
   * Write what the store marked dirty, within the frame budget: once the budget is spent the
   * remaining panes wait for the next frame (first in line then, so every pane keeps moving).
   * Reads no layout (panes follow their output by CSS). Returns whether panes are left for another
   * frame.
   * @param {Store} store
   * @returns {boolean}
   */
  flush(store) {
    const started = this.budgetClock();
    const dirty = store.takeDirty();
    const state = store.state;
    if (dirty.layout) {
      this.#layout(state.panes);
      for (const id of this.views.keys()) dirty.panes.add(id);
    }
    if (dirty.run) this.#updateRun(state.run);
    for (const id of dirty.panes) this.deferred.add(id);
    let written = 0;
    for (const id of this.deferred) {
      if (written > 0 && this.budgetClock() - started > this.frameBudgetMs) break;
      this.deferred.delete(id);
      written += 1;
      const view = this.views.get(id);
      if (!view) continue;
      view.update(paneState(state, id), store.takeTextAppends(id));
    }
    this.tick(store);
    return this.deferred.size > 0;
  }

  /**
   * Clock-driven display: the elapsed time and the stall markers.
   * @param {Store} store
   */
  tick(store) {
    const now = this.now();
    const elapsed = formatElapsed(liveElapsed(store.state.run, this.runReceivedAt, now));
    setText(this.elapsedEl, elapsed);
    for (const [id, view] of this.views) {
      view.tick(now, store.lastActivity.get(id) ?? Math.max(this.createdAt, this.runReceivedAt));
    }
  }

  destroy() {
    this.stopButton.removeEventListener("click", this.#handleStop);
    this.voteEl.removeEventListener("click", this.#handleVote);
    for (const view of this.views.values()) view.destroy();
    this.views.clear();
    this.root.remove();
  }
}
