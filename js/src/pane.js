// One pane's DOM: built once, then updated field by field against what it last showed. Text goes
// through the incremental Markdown renderer (earlier turns' answers too); everything else untrusted
// goes in as textContent, except search descriptions, which pass through the inline sanitiser.

import { IncrementalMarkdown } from "./markdown.js";
import { setData, setText } from "./morph.js";
import { formatCost, isActive } from "./protocol.js";
import { isSafeUrl, sanitizeInlineHtml } from "./sanitize.js";
import { continuation } from "./state.js";

/**
 * @typedef {import("./protocol.js").PaneSpec} PaneSpec
 * @typedef {import("./protocol.js").LocalPaneState} LocalPaneState
 * @typedef {import("./protocol.js").ToolCall} ToolCall
 * @typedef {import("./protocol.js").SearchResult} SearchResult
 * @typedef {import("./protocol.js").PaneMetrics} PaneMetrics
 * @typedef {import("./protocol.js").PaneError} PaneError
 * @typedef {import("./protocol.js").EarlierTurn} EarlierTurn
 */

/** How long a streaming pane may go without receiving anything before it is marked stalled. */
export const STALL_MS = 1000;

const STATUS_LABELS = /** @type {const} */ ({
  queued: "queued",
  connecting: "connecting",
  waiting: "waiting",
  streaming: "streaming",
  retrying: "retrying",
  done: "done",
  failed: "failed",
  cancelled: "cancelled",
});

/** What each cost source means, for the cost's tooltip. */
const COST_TITLES = /** @type {const} */ ({
  provider: "cost of this answer, as the provider reported it",
  "price-table": "cost of this answer: the reported usage at LiteLLM's bundled prices",
  simulated: "simulated price declared in the model options: not a real cost",
});

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {string} [className] @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** @param {number | null} x @param {number} digits */
function fmt(x, digits) {
  return x === null ? "–" : x.toFixed(digits);
}

/** @param {string} args */
export function prettyArguments(args) {
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}

/**
 * Sync a list element with an append-only array: append new items; rebuild only when the array
 * is not an extension of what is shown (a snapshot replaced it).
 * @template T
 * @param {HTMLElement} list @param {readonly T[]} shown @param {readonly T[]} next
 * @param {(item: T) => HTMLElement} build
 * @returns {readonly T[]}
 */
function syncList(list, shown, next, build) {
  if (shown === next) return shown;
  const extends_ = next.length >= shown.length && shown.every((x, i) => x === next[i]);
  if (!extends_) {
    list.replaceChildren();
    shown = [];
  }
  for (let i = shown.length; i < next.length; i++) list.appendChild(build(next[i]));
  list.hidden = next.length === 0;
  return next;
}

/** @param {ToolCall} call */
function buildToolCall(call) {
  const item = h("div", "llmgrid-tool-call");
  const head = h("div", "llmgrid-tool-call-head");
  head.append(h("span", "llmgrid-tool-call-label", "tool call"), h("span", "llmgrid-tool-call-name", call.name));
  item.append(head, h("pre", "llmgrid-tool-call-args", prettyArguments(call.arguments)));
  return item;
}

/** @param {SearchResult} r */
function buildResult(r) {
  const li = h("li", "llmgrid-result");
  const title = h("a", "llmgrid-result-title", r.title || r.url);
  if (isSafeUrl(r.url)) {
    title.href = r.url;
    title.target = "_blank";
    title.rel = "noopener noreferrer";
  }
  li.appendChild(title);
  if (r.age) li.appendChild(h("span", "llmgrid-result-age", r.age));
  if (isSafeUrl(r.url)) li.appendChild(h("div", "llmgrid-result-url", r.url));
  if (r.description) {
    const desc = h("div", "llmgrid-result-desc");
    desc.appendChild(sanitizeInlineHtml(r.description));
    li.appendChild(desc);
  }
  return li;
}

/** @param {string} s */
function buildAnalysis(s) {
  return h("li", "llmgrid-analysis-item", s);
}

/**
 * An earlier turn, collapsed: "Turn N" and the question as its summary, the answer (Markdown,
 * sanitised) inside, and how it ended when that was not "done".
 * @param {EarlierTurn} t
 */
export function buildTurn(t) {
  const el = h("details", "llmgrid-turn");
  el.dataset.turn = String(t.turn);
  el.dataset.status = t.status;
  const summary = h("summary", "llmgrid-turn-summary");
  summary.append(h("span", "llmgrid-turn-number", `Turn ${t.turn}`), h("span", "llmgrid-turn-question", t.question));
  summary.title = t.question;
  if (t.status !== "done") summary.append(h("span", `llmgrid-badge llmgrid-status llmgrid-status-${t.status}`, t.status));
  const answer = h("div", "llmgrid-turn-text llmgrid-markdown");
  new IncrementalMarkdown(answer).update(t.text);
  el.append(summary, answer);
  return el;
}

/** @param {readonly EarlierTurn[]} a @param {readonly EarlierTurn[]} b */
function sameTurns(a, b) {
  return a === b || (a.length === b.length && a.every((t, i) => {
    const u = b[i];
    return t.turn === u.turn && t.question === u.question && t.text === u.text && t.status === u.status;
  }));
}

/** The DOM of one pane; `update` writes only what differs from the last state it showed. */
export class PaneView {
  /**
   * @param {PaneSpec} spec
   * @param {{onStop: (paneId: string) => void, onCite?: (n: number) => void}} callbacks
   */
  constructor(spec, callbacks) {
    this.id = spec.id;
    this.kind = spec.kind;
    this.onStop = callbacks.onStop;
    this.onCite = callbacks.onCite;
    /** @type {LocalPaneState | null} */
    this.shown = null;
    this.stalled = false;
    this.stopRequested = false;
    this.reasoningUserToggled = false;
    this.reasoningAutoOpen = false;
    /** @type {readonly ToolCall[]} */
    this.shownCalls = [];
    /** @type {readonly SearchResult[]} */
    this.shownResults = [];
    /** @type {readonly string[]} */
    this.shownAnalysis = [];
    /** @type {readonly EarlierTurn[]} */
    this.shownTurns = [];

    const el = h("section", `llmgrid-pane llmgrid-kind-${spec.kind}`);
    el.dataset.paneId = spec.id;
    el.dataset.status = "queued";
    el.dataset.textLength = "0";
    this.el = el;

    const header = h("header", "llmgrid-pane-header");
    this.nameEl = h("span", "llmgrid-pane-name");
    this.routeEl = h("span", "llmgrid-badge llmgrid-route");
    this.statusEl = h("span", "llmgrid-badge llmgrid-status");
    const metrics = h("span", "llmgrid-metrics");
    this.ttftEl = h("span", "llmgrid-ttft");
    this.ttftEl.title = "time to first token";
    this.tokensEl = h("span", "llmgrid-tokens");
    this.tpsEl = h("span", "llmgrid-tps");
    this.tpsEl.title = "tokens per second after the first token";
    // What the answer cost, once the pane has ended and only when known (never a guess).
    this.costEl = h("span", "llmgrid-cost");
    this.costEl.hidden = true;
    metrics.append(this.ttftEl, this.tokensEl, this.tpsEl, this.costEl);
    this.stallEl = h("span", "llmgrid-stall");
    this.stallEl.title = "nothing received for over a second";
    this.stopEl = h("button", "llmgrid-pane-stop", "Stop");
    this.stopEl.type = "button";
    this.stopEl.title = "Stop this pane";
    this.stopEl.addEventListener("click", this.#handleStop);
    header.append(this.nameEl, this.routeEl, this.statusEl, metrics, this.stopEl);
    this.header = header;

    // The body scrolls a single content element laid out bottom-up (styles.css): the browser
    // itself keeps a pane that is scrolled to the bottom there as the answer grows, and keeps
    // a pane the user scrolled up where they put it. No script reads or sets scroll positions.
    const body = h("div", "llmgrid-pane-body");
    const content = h("div", "llmgrid-pane-content");
    body.appendChild(content);

    // A conversation's earlier turns, collapsed, above the live answer and its turn number.
    this.turnsEl = h("div", "llmgrid-turns");
    this.turnsEl.hidden = true;
    this.turnEl = h("div", "llmgrid-pane-turn");
    this.turnEl.hidden = true;

    this.reasoningEl = h("details", "llmgrid-pane-reasoning");
    this.reasoningEl.hidden = true;
    this.reasoningEl.append(h("summary", "llmgrid-pane-reasoning-summary", "Reasoning"));
    this.reasoningText = document.createTextNode("");
    const reasoningBody = h("div", "llmgrid-pane-reasoning-text");
    reasoningBody.appendChild(this.reasoningText);
    this.reasoningEl.appendChild(reasoningBody);
    this.reasoningEl.addEventListener("toggle", this.#handleToggle);

    // A refusal (the model declining to answer) is untrusted plain text, like reasoning.
    this.refusalEl = h("div", "llmgrid-pane-refusal");
    this.refusalEl.hidden = true;
    this.refusalEl.setAttribute("role", "note");
    this.refusalText = document.createTextNode("");
    const refusalBody = h("div", "llmgrid-pane-refusal-text");
    refusalBody.appendChild(this.refusalText);
    this.refusalEl.append(h("span", "llmgrid-pane-refusal-label", "Refused"), refusalBody);

    this.resultsEl = h("ol", "llmgrid-results");
    this.resultsEl.hidden = true;
    this.analysisEl = h("ul", "llmgrid-analysis");
    this.analysisEl.hidden = true;
    this.callsEl = h("div", "llmgrid-tool-calls");
    this.callsEl.hidden = true;
    this.textEl = h("div", "llmgrid-pane-text llmgrid-markdown");
    this.textEl.addEventListener("click", this.#handleCite);
    this.textEl.addEventListener("mouseover", this.#handleCiteHover);
    this.markdown = new IncrementalMarkdown(this.textEl);
    this.errorEl = h("div", "llmgrid-pane-error");
    this.errorEl.setAttribute("role", "alert");

    content.append(this.turnsEl, this.turnEl);
    if (spec.kind === "search") {
      content.append(this.resultsEl, this.analysisEl, this.reasoningEl, this.callsEl, this.refusalEl, this.textEl);
    } else {
      content.append(this.reasoningEl, this.callsEl, this.refusalEl, this.textEl, this.analysisEl, this.resultsEl);
    }
    el.append(header, body);
    this.setSpec(spec);
  }

  /** @param {PaneSpec} spec */
  setSpec(spec) {
    this.nameEl.textContent = spec.name;
    this.nameEl.title = spec.model;
    this.routeEl.textContent = spec.route;
    this.routeEl.title = `route: ${spec.route}`;
    this.routeEl.hidden = !spec.route;
    this.el.className = `llmgrid-pane llmgrid-kind-${spec.kind}`;
  }

  #handleStop = () => {
    this.stopRequested = true;
    this.stopEl.disabled = true;
    this.stopEl.textContent = "Stopping…";
    this.onStop(this.id);
  };

  /** @param {Event} e @returns {number} the n of a clicked or hovered [n] citation, or 0 */
  #citation(e) {
    const target = /** @type {Element | null} */ (e.target instanceof Element ? e.target : null);
    const cite = target?.closest(".llmgrid-cite");
    const m = cite ? /^\[(\d+)\]$/.exec(cite.textContent ?? "") : null;
    return m ? Number(m[1]) : 0;
  }

  /** @param {number} n */
  #result(n) {
    const r = this.shown?.results[n - 1];
    return r && /^https?:\/\//i.test(r.url) ? r : null;
  }

  /** A search pane's [n] opens result n (http/https only); the master's scrolls to pane n. */
  #handleCite = (/** @type {Event} */ e) => {
    const n = this.#citation(e);
    if (!n) return;
    if (this.kind === "search") {
      const r = this.#result(n);
      if (r) window.open(r.url, "_blank", "noopener,noreferrer");
    } else if (this.kind === "master") {
      this.onCite?.(n);
    }
  };

  #handleCiteHover = (/** @type {Event} */ e) => {
    const n = this.#citation(e);
    const cite = n && e.target instanceof Element ? e.target.closest(".llmgrid-cite") : null;
    if (!cite || this.kind !== "search") return;
    const r = this.#result(n);
    if (r) /** @type {HTMLElement} */ (cite).title = `${r.title} — ${r.url}`;
  };

  #handleToggle = () => {
    if (this.reasoningEl.open !== this.reasoningAutoOpen) this.reasoningUserToggled = true;
  };

  /**
   * Show `state`.
   * `appends` (what was appended to the text, reasoning and refusal since the last update, from the
   * Store) lets each take in just the new part; without it, or when it does not line up, the whole.
   * @param {LocalPaneState} state @param {import("./state.js").TextAppend[]} [appends]
   */
  update(state, appends = []) {
    const prev = this.shown;

    if (!prev || prev.status !== state.status) {
      this.el.dataset.status = state.status;
      this.statusEl.textContent = STATUS_LABELS[state.status];
      this.statusEl.className = `llmgrid-badge llmgrid-status llmgrid-status-${state.status}`;
      if (!isActive(state.status)) this.stopRequested = false;
      if (!isActive(state.status)) this.setStalled(false, 0);
    }
    const active = isActive(state.status);
    this.stopEl.hidden = !active;
    this.stopEl.disabled = this.stopRequested;
    if (!this.stopRequested) setText(this.stopEl, "Stop");

    if (!prev || prev.stale !== state.stale) {
      if (state.stale) this.el.dataset.stale = "true";
      else delete this.el.dataset.stale;
    }

    const textAppends = appends.filter((a) => a.field === "text");
    const reasoningAppends = appends.filter((a) => a.field === "reasoning");
    if (reasoningAppends.length > 0 || !prev || prev.reasoning !== state.reasoning) {
      this.#updateReasoning(state.reasoning, reasoningAppends);
    }
    const refusalAppends = appends.filter((a) => a.field === "refusal");
    if (refusalAppends.length > 0 || !prev || prev.refusal !== state.refusal) {
      this.#updateRefusal(state.refusal, refusalAppends);
    }
    if (textAppends.length > 0 || !prev || prev.text !== state.text) {
      const added = continuation(textAppends, this.markdown.text.length, state.text.length);
      if (added !== null) this.markdown.append(added);
      else this.markdown.update(state.text);
      this.el.dataset.textLength = String(state.text.length);
    }
    // Reasoning is open while it streams and folds away once the answer (or a refusal) starts.
    const wantOpen = state.reasoning.length > 0 && state.text.length === 0 && state.refusal.length === 0;
    if (!this.reasoningUserToggled && this.reasoningEl.open !== wantOpen) {
      this.reasoningAutoOpen = wantOpen;
      this.reasoningEl.open = wantOpen;
    }

    // Both change only with a snapshot: a streaming update compares two references and moves on.
    if (!prev || prev.turns !== state.turns || prev.turn !== state.turn) {
      if (!sameTurns(this.shownTurns, state.turns)) this.#updateTurns(state.turns);
      setText(this.turnEl, `Turn ${state.turn}`);
      this.turnEl.hidden = state.turn === 1 && state.turns.length === 0;
      this.el.dataset.turn = String(state.turn);
    }

    const calls = syncList(this.callsEl, this.shownCalls, state.tool_calls, buildToolCall);
    const results = syncList(this.resultsEl, this.shownResults, state.results, buildResult);
    const analysis = syncList(this.analysisEl, this.shownAnalysis, state.analysis, buildAnalysis);
    this.shownCalls = calls;
    this.shownResults = results;
    this.shownAnalysis = analysis;

    if (!prev || prev.error !== state.error || prev.status !== state.status) this.#updateError(state);
    if (!prev || prev.metrics !== state.metrics) this.#updateMetrics(state.metrics);

    this.shown = state;
  }

  /**
   * Earlier turns change only with a snapshot (a new conversation turn or a reopened notebook):
   * rebuilt whole, and only when they differ from what is shown.
   * @param {readonly EarlierTurn[]} turns
   */
  #updateTurns(turns) {
    this.turnsEl.replaceChildren(...turns.map(buildTurn));
    this.turnsEl.hidden = turns.length === 0;
    this.shownTurns = turns;
  }

  /**
   * Reasoning is plain text: append what was appended when it lines up, else set it whole.
   * @param {string} reasoning @param {import("./state.js").TextAppend[]} appends
   */
  #updateReasoning(reasoning, appends) {
    const node = this.reasoningText;
    const added = continuation(appends, node.length, reasoning.length);
    if (added !== null) node.appendData(added);
    else setData(node, reasoning);
    this.reasoningEl.hidden = reasoning.length === 0;
  }

  /**
   * A refusal is plain text too, appended the same way; the element shows only when there is one.
   * @param {string} refusal @param {import("./state.js").TextAppend[]} appends
   */
  #updateRefusal(refusal, appends) {
    const node = this.refusalText;
    const added = continuation(appends, node.length, refusal.length);
    if (added !== null) node.appendData(added);
    else setData(node, refusal);
    this.refusalEl.hidden = refusal.length === 0;
  }

  /** @param {LocalPaneState} state */
  #updateError(state) {
    const err = state.error;
    if (!err && state.status !== "failed") {
      this.errorEl.remove();
      return;
    }
    const message = err?.message || "The request failed.";
    const suffix = err?.recoverable && state.status !== "failed" ? " (retrying)" : "";
    this.errorEl.textContent = message + suffix;
    this.errorEl.classList.toggle("llmgrid-recoverable", Boolean(err?.recoverable) && state.status !== "failed");
    if (this.textEl.nextSibling !== this.errorEl) this.textEl.after(this.errorEl);
  }

  /** @param {PaneMetrics} m */
  #updateMetrics(m) {
    setText(this.ttftEl, `TTFT ${m.ttft_s === null ? "–" : `${fmt(m.ttft_s, 2)} s`}`);
    setText(this.tokensEl, `${m.tokens} tok`);
    setText(this.tpsEl, `${fmt(m.tokens_per_s, 1)} tok/s`);
    const cost = formatCost(m.cost_usd, m.cost_source);
    setText(this.costEl, cost);
    this.costEl.hidden = !cost;
    this.costEl.title = cost ? COST_TITLES[m.cost_source ?? "price-table"] : "";
    if (cost) this.costEl.dataset.costSource = m.cost_source ?? "";
    else delete this.costEl.dataset.costSource;
  }

  /**
   * Show or hide the stall marker (present in the DOM only while stalled).
   * @param {boolean} stalled @param {number} silentMs
   */
  setStalled(stalled, silentMs) {
    if (stalled) {
      setText(this.stallEl, `stalled ${(silentMs / 1000).toFixed(1)} s`);
      if (!this.stalled) this.header.insertBefore(this.stallEl, this.stopEl);
    } else if (this.stalled) {
      this.stallEl.remove();
    }
    this.stalled = stalled;
    if (stalled) this.el.dataset.stalled = "true";
    else delete this.el.dataset.stalled;
  }

  /**
   * Re-evaluate the stall marker.
   * @param {number} now @param {number} lastActivity both in the same clock (ms)
   */
  tick(now, lastActivity) {
    const silent = now - lastActivity;
    this.setStalled(this.shown?.status === "streaming" && silent > STALL_MS, silent);
  }

  destroy() {
    this.stopEl.removeEventListener("click", this.#handleStop);
    this.textEl.removeEventListener("click", this.#handleCite);
    this.textEl.removeEventListener("mouseover", this.#handleCiteHover);
    this.reasoningEl.removeEventListener("toggle", this.#handleToggle);
    this.el.remove();
  }
}
