// The message envelope shared with the kernel (mirrored in llmgrid_nb/widget.py) and the pure
// rules for folding a delta into a pane's state. No DOM, no model: everything here is a value in,
// a value out, so the Python side can check its encoder against the same fixtures.

export const PROTOCOL_VERSION = 1;
export const MSG_DELTA = "delta";
export const MSG_STOP = "stop";
/** A delta on the wire: `{v, type: "packed"}` plus one buffer holding the delta's UTF-8 JSON. */
export const MSG_PACKED = "packed";
/** View -> kernel: "I missed deltas, send a snapshot". */
export const MSG_SYNC = "sync";
/** View -> kernel: a blind run's vote, `{v, type: "vote", choice}` (a pane id, "tie" or "both_bad"). */
export const MSG_VOTE = "vote";
/** Vote choices that name no pane. */
export const VOTE_TIES = ["tie", "both_bad"];

/** @typedef {"queued" | "connecting" | "waiting" | "streaming" | "retrying" | "done" | "failed" | "cancelled"} PaneStatus */
/** @typedef {"running" | "done" | "cancelled" | "failed"} RunStatus */
/** @typedef {"model" | "search" | "master"} PaneKind */

/** @type {readonly PaneStatus[]} */
export const PANE_STATUSES = [
  "queued",
  "connecting",
  "waiting",
  "streaming",
  "retrying",
  "done",
  "failed",
  "cancelled",
];
/** Statuses in which a pane can still produce output (and so can be stopped). */
/** @type {readonly PaneStatus[]} */
export const ACTIVE_STATUSES = ["queued", "connecting", "waiting", "streaming", "retrying"];
/** @type {readonly RunStatus[]} */
export const RUN_STATUSES = ["running", "done", "cancelled", "failed"];
/** @type {readonly PaneKind[]} */
export const PANE_KINDS = ["model", "search", "master"];
/** @type {readonly CostSource[]} */
export const COST_SOURCES = ["provider", "price-table", "simulated"];

/**
 * @typedef {{id: string, name: string, model: string, route: string, kind: PaneKind}} PaneSpec
 * @typedef {{id: string, name: string, arguments: string}} ToolCall
 * @typedef {{title: string, url: string, description: string, age?: string}} SearchResult
 * @typedef {{message: string, recoverable: boolean}} PaneError
 * @typedef {"provider" | "price-table" | "simulated"} CostSource
 * @typedef {{
 *   ttft_s: number | null, tokens: number, tokens_per_s: number | null, elapsed_s: number, n_chunks: number,
 *   cost_usd: number | null, cost_source: CostSource | null
 * }} PaneMetrics
 * `cost_usd` is what the answer cost, known once the pane has ended (computed in the kernel); null
 * when unknown. `cost_source` says where it came from ("simulated": a fake price, not a real cost).
 * An earlier turn of the pane's conversation, as it ended: its question and the pane's answer.
 * @typedef {{turn: number, question: string, text: string, status: PaneStatus}} EarlierTurn
 * @typedef {{
 *   status: PaneStatus, text: string, reasoning: string, refusal: string, tool_calls: ToolCall[],
 *   results: SearchResult[], analysis: string[], error: PaneError | null,
 *   metrics: PaneMetrics, seq: number, turn: number, turns: EarlierTurn[]
 * }} PaneState
 * `turn` is the live answer's turn in the conversation (1 for the first question); `turns` the
 * pane's earlier turns, oldest first. Both come only with snapshots (they never change mid-run).
 * `refusal` is the model declining to answer (OpenAI's `delta.refusal`), kept apart from `text`.
 * A pane's state as held by the view: PaneState plus `stale`, set when a delta was missed.
 * @typedef {PaneState & {stale: boolean}} LocalPaneState
 * `stoppable` is false while the kernel is blocked waiting for the run (Stop clicks could not reach it).
 * `total_cost_usd` sums the panes with a known cost (null: none yet); `cost_simulated` says a simulated price is in it.
 * @typedef {{
 *   run_id: string, prompt: string, status: RunStatus, elapsed_s: number, total_tokens: number, started_at: number,
 *   stoppable: boolean, total_cost_usd: number | null, cost_simulated: boolean
 * }} RunState
 * @typedef {[number, string]} TextPatch
 * The fields that grow as strings, patched with a TextPatch.
 * @typedef {"text" | "reasoning" | "refusal"} TextField
 * @typedef {{
 *   text?: TextPatch, reasoning?: TextPatch, refusal?: TextPatch, tool_calls?: [number, ToolCall[]],
 *   results?: [number, SearchResult[]], analysis?: [number, string[]],
 *   status?: PaneStatus, error?: PaneError | null, metrics?: Partial<PaneMetrics>, final?: boolean
 * }} PaneDelta
 * `final` marks a stream's full state at its end (every offset 0): it makes a stale pane whole.
 * @typedef {{v: 1, type: "delta", seq: number, panes: Record<string, PaneDelta>, run?: Partial<RunState>}} DeltaMessage
 * @typedef {{v: 1, type: "stop", pane: string | null}} StopMessage
 * @typedef {{v: 1, type: "sync"}} SyncMessage
 * @typedef {{v: 1, type: "vote", choice: string}} VoteMessage
 * The vote bar of a finished blind run (trait `vote`): one choice per model pane, by its label
 * ("Model A"); `winner` (a choice's id, "tie" or "both_bad") once voted, when `open` turns false;
 * `error` the kernel's reason a vote was refused.
 * @typedef {{id: string, label: string}} VoteChoice
 * @typedef {{open: boolean, choices: VoteChoice[], winner: string | null, error: string | null}} VoteState
 */

/** @param {unknown} x @returns {x is Record<string, any>} */
function isObject(x) {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** @param {unknown} x @returns {x is number} */
function isFiniteNumber(x) {
  return typeof x === "number" && Number.isFinite(x);
}

/** @param {unknown} x @param {number} fallback */
function num(x, fallback) {
  return isFiniteNumber(x) ? x : fallback;
}

/** @param {unknown} x */
function numOrNull(x) {
  return isFiniteNumber(x) ? x : null;
}

/** @param {unknown} x */
function str(x) {
  return typeof x === "string" ? x : x == null ? "" : String(x);
}

/** @returns {PaneMetrics} */
export function emptyMetrics() {
  return { ttft_s: null, tokens: 0, tokens_per_s: null, elapsed_s: 0, n_chunks: 0, cost_usd: null, cost_source: null };
}

/** @returns {LocalPaneState} */
export function emptyPaneState() {
  return {
    status: "queued",
    text: "",
    reasoning: "",
    refusal: "",
    tool_calls: [],
    results: [],
    analysis: [],
    error: null,
    metrics: emptyMetrics(),
    seq: -1,
    turn: 1,
    turns: [],
    stale: false,
  };
}

/** @returns {RunState} */
export function emptyRun() {
  return {
    run_id: "",
    prompt: "",
    status: "done",
    elapsed_s: 0,
    total_tokens: 0,
    started_at: 0,
    stoppable: true,
    total_cost_usd: null,
    cost_simulated: false,
  };
}

/** @param {unknown} x @returns {ToolCall} */
function normalizeToolCall(x) {
  const o = isObject(x) ? x : {};
  const args = o.arguments;
  return {
    id: str(o.id),
    name: str(o.name),
    arguments: typeof args === "string" ? args : args == null ? "" : JSON.stringify(args),
  };
}

/** @param {unknown} x @returns {SearchResult} */
function normalizeResult(x) {
  const o = isObject(x) ? x : {};
  /** @type {SearchResult} */
  const r = { title: str(o.title), url: str(o.url), description: str(o.description) };
  if (o.age != null && o.age !== "") r.age = str(o.age);
  return r;
}

/** @param {unknown} x @returns {number} a turn number: a whole number >= 1, else 1 */
function turnNumber(x) {
  return isFiniteNumber(x) && Number.isInteger(x) && x >= 1 ? x : 1;
}

/** @param {unknown} x @returns {EarlierTurn} */
function normalizeTurn(x) {
  const o = isObject(x) ? x : {};
  return { turn: turnNumber(o.turn), question: str(o.question), text: str(o.text), status: isPaneStatus(o.status) ? o.status : "done" };
}

/** @param {unknown} x @returns {PaneError | null} */
function normalizeError(x) {
  if (!isObject(x)) return null;
  return { message: str(x.message), recoverable: Boolean(x.recoverable) };
}

/** @param {unknown} x @returns {x is PaneStatus} */
export function isPaneStatus(x) {
  return PANE_STATUSES.includes(/** @type {PaneStatus} */ (x));
}

/** @param {unknown} x @returns {x is RunStatus} */
export function isRunStatus(x) {
  return RUN_STATUSES.includes(/** @type {RunStatus} */ (x));
}

/**
 * A cost as the pane header and footer show it (mirrors llmgrid_nb.cost.format_usd): `$0.0012`,
 * `sim $0.0012` for a simulated price, "" when unknown.
 * @param {number | null} usd @param {string | null} [source]
 */
export function formatCost(usd, source = null) {
  if (!isFiniteNumber(usd) || usd < 0) return "";
  let text;
  if (usd === 0) text = "$0";
  else if (usd < 0.0001) text = `$${usd.toFixed(6)}`;
  else if (usd < 1) text = `$${usd.toFixed(4)}`;
  else text = `$${usd.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  return source === "simulated" ? `sim ${text}` : text;
}

/** @param {PaneStatus} status */
export function isActive(status) {
  return ACTIVE_STATUSES.includes(status);
}

/**
 * Merge a partial metrics object over `base`, keeping only well-typed fields.
 * @param {PaneMetrics} base @param {unknown} patch @returns {PaneMetrics}
 */
export function mergeMetrics(base, patch) {
  if (!isObject(patch)) return base;
  const m = { ...base };
  if ("ttft_s" in patch) m.ttft_s = numOrNull(patch.ttft_s);
  if ("tokens_per_s" in patch) m.tokens_per_s = numOrNull(patch.tokens_per_s);
  if (isFiniteNumber(patch.tokens)) m.tokens = patch.tokens;
  if (isFiniteNumber(patch.elapsed_s)) m.elapsed_s = patch.elapsed_s;
  if (isFiniteNumber(patch.n_chunks)) m.n_chunks = patch.n_chunks;
  if ("cost_usd" in patch) m.cost_usd = isFiniteNumber(patch.cost_usd) && patch.cost_usd >= 0 ? patch.cost_usd : null;
  if ("cost_source" in patch) m.cost_source = COST_SOURCES.includes(patch.cost_source) ? patch.cost_source : null;
  return m;
}

/**
 * A pane state from the `snapshot` trait, with defaults for anything missing or mistyped.
 * @param {unknown} raw @returns {LocalPaneState}
 */
export function normalizePaneState(raw) {
  const o = isObject(raw) ? raw : {};
  const base = emptyPaneState();
  return {
    status: isPaneStatus(o.status) ? o.status : base.status,
    text: str(o.text),
    reasoning: str(o.reasoning),
    refusal: str(o.refusal),
    tool_calls: Array.isArray(o.tool_calls) ? o.tool_calls.map(normalizeToolCall) : [],
    results: Array.isArray(o.results) ? o.results.map(normalizeResult) : [],
    analysis: Array.isArray(o.analysis) ? o.analysis.map(str) : [],
    error: normalizeError(o.error),
    metrics: mergeMetrics(base.metrics, o.metrics),
    seq: num(o.seq, -1),
    turn: turnNumber(o.turn),
    turns: Array.isArray(o.turns) ? o.turns.map(normalizeTurn) : [],
    stale: false,
  };
}

/** @param {unknown} raw @returns {PaneSpec[]} */
export function normalizePanes(raw) {
  if (!Array.isArray(raw)) return [];
  /** @type {PaneSpec[]} */
  const out = [];
  const seen = new Set();
  for (const p of raw) {
    if (!isObject(p) || typeof p.id !== "string" || seen.has(p.id)) continue;
    seen.add(p.id);
    out.push({
      id: p.id,
      name: str(p.name) || p.id,
      model: str(p.model),
      route: str(p.route),
      kind: PANE_KINDS.includes(p.kind) ? p.kind : "model",
    });
  }
  return out;
}

/**
 * Merge a (possibly partial) run object over `base`.
 * @param {RunState} base @param {unknown} patch @returns {RunState}
 */
export function mergeRun(base, patch) {
  if (!isObject(patch)) return base;
  const r = { ...base };
  if (typeof patch.run_id === "string") r.run_id = patch.run_id;
  if (typeof patch.prompt === "string") r.prompt = patch.prompt;
  if (isRunStatus(patch.status)) r.status = patch.status;
  if (isFiniteNumber(patch.elapsed_s)) r.elapsed_s = patch.elapsed_s;
  if (isFiniteNumber(patch.total_tokens)) r.total_tokens = patch.total_tokens;
  if (isFiniteNumber(patch.started_at)) r.started_at = patch.started_at;
  if (typeof patch.stoppable === "boolean") r.stoppable = patch.stoppable;
  if ("total_cost_usd" in patch) {
    r.total_cost_usd = isFiniteNumber(patch.total_cost_usd) && patch.total_cost_usd >= 0 ? patch.total_cost_usd : null;
  }
  if (typeof patch.cost_simulated === "boolean") r.cost_simulated = patch.cost_simulated;
  return r;
}

/**
 * Check a custom message. Returns the delta, or a reason it must be ignored.
 * @param {unknown} msg
 * @returns {{ok: true, message: DeltaMessage} | {ok: false, reason: string}}
 */
export function parseMessage(msg) {
  if (!isObject(msg)) return { ok: false, reason: "message is not an object" };
  if (msg.v !== PROTOCOL_VERSION) return { ok: false, reason: `unknown protocol version ${JSON.stringify(msg.v)}` };
  if (msg.type !== MSG_DELTA) return { ok: false, reason: `unknown message type ${JSON.stringify(msg.type)}` };
  if (!isFiniteNumber(msg.seq)) return { ok: false, reason: "delta without a numeric seq" };
  if (!isObject(msg.panes)) return { ok: false, reason: "delta without a panes object" };
  return { ok: true, message: /** @type {DeltaMessage} */ (msg) };
}

const utf8 = new TextDecoder();

/**
 * The message inside a packed envelope (its first buffer, JSON), or `msg` itself when it is not
 * packed. Throws on a packed envelope whose buffer is missing or not JSON.
 * @param {unknown} msg @param {unknown} [buffers] @returns {unknown}
 */
export function unpackMessage(msg, buffers) {
  if (!isObject(msg) || msg.type !== MSG_PACKED || msg.v !== PROTOCOL_VERSION) return msg;
  const buf = Array.isArray(buffers) ? buffers[0] : undefined;
  /** @type {Uint8Array} */
  let bytes;
  if (ArrayBuffer.isView(buf)) bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  // By tag, not instanceof: the buffer may come from another realm (a worker, an iframe's comm).
  else if (Object.prototype.toString.call(buf) === "[object ArrayBuffer]") bytes = new Uint8Array(/** @type {ArrayBuffer} */ (buf));
  else throw new Error("packed message without a buffer");
  return JSON.parse(utf8.decode(bytes));
}

/** @returns {SyncMessage} */
export function syncMessage() {
  return { v: PROTOCOL_VERSION, type: MSG_SYNC };
}

/** @param {string} choice a pane id, "tie" or "both_bad" @returns {VoteMessage} */
export function voteMessage(choice) {
  return { v: PROTOCOL_VERSION, type: MSG_VOTE, choice };
}

/**
 * The vote trait as the view uses it; null when there is nothing to vote on (not a blind run,
 * still running, fewer than two choices, or malformed).
 * @param {unknown} raw @returns {VoteState | null}
 */
export function normalizeVote(raw) {
  if (!isObject(raw) || !Array.isArray(raw.choices)) return null;
  /** @type {VoteChoice[]} */
  const choices = [];
  for (const c of raw.choices) {
    if (isObject(c) && typeof c.id === "string" && typeof c.label === "string") choices.push({ id: c.id, label: c.label });
  }
  if (choices.length < 2) return null;
  const ids = new Set(choices.map((c) => c.id));
  const winner = typeof raw.winner === "string" && (ids.has(raw.winner) || VOTE_TIES.includes(raw.winner)) ? raw.winner : null;
  return {
    open: raw.open === true && winner === null,
    choices,
    winner,
    error: typeof raw.error === "string" && raw.error ? raw.error : null,
  };
}

/** @param {string | null} paneId @returns {StopMessage} */
export function stopMessage(paneId) {
  return { v: PROTOCOL_VERSION, type: MSG_STOP, pane: paneId };
}

/**
 * The offset rule for append-only fields. `patch` = [offset, appended].
 * Returns the part of `appended` beyond `currentLength`, or null for a gap (offset beyond what we
 * have: a delta was missed) or a malformed patch.
 * @template {string | unknown[]} T
 * @param {number} currentLength @param {unknown} patch @param {(x: unknown) => x is T} isPayload
 * @returns {{gap: boolean, extra: T | null}}
 */
export function resolveAppend(currentLength, patch, isPayload) {
  if (!Array.isArray(patch) || patch.length !== 2) return { gap: false, extra: null };
  const [offset, payload] = patch;
  if (!isFiniteNumber(offset) || offset < 0 || !isPayload(payload)) return { gap: false, extra: null };
  if (offset > currentLength) return { gap: true, extra: null };
  const skip = currentLength - offset;
  if (skip >= payload.length) return { gap: false, extra: null };
  return { gap: false, extra: /** @type {T} */ (skip === 0 ? payload : payload.slice(skip)) };
}

/** @param {unknown} x @returns {x is string} */
const isString = (x) => typeof x === "string";
/** @param {unknown} x @returns {x is unknown[]} */
const isArray = (x) => Array.isArray(x);

/**
 * Fold one pane's delta into its state. Pure: returns a new state (or the same object when the
 * delta is ignored because `seq` is not newer than what the state already includes).
 * `onAppend(field, at, extra)` hears what was appended to the text, reasoning or refusal, so a
 * renderer can take in just that instead of reading the whole (concatenated, not yet flattened)
 * string every frame.
 * @param {LocalPaneState} state @param {unknown} delta @param {number} seq
 * @param {(field: TextField, at: number, extra: string) => void} [onAppend]
 * @returns {LocalPaneState}
 */
export function applyPaneDelta(state, delta, seq, onAppend) {
  if (!isObject(delta) || seq <= state.seq) return state;
  const next = { ...state, seq };

  const text = resolveAppend(state.text.length, delta.text, isString);
  if (text.gap) next.stale = true;
  else if (text.extra) {
    next.text = state.text + text.extra;
    onAppend?.("text", state.text.length, text.extra);
  }

  const reasoning = resolveAppend(state.reasoning.length, delta.reasoning, isString);
  if (reasoning.gap) next.stale = true;
  else if (reasoning.extra) {
    next.reasoning = state.reasoning + reasoning.extra;
    onAppend?.("reasoning", state.reasoning.length, reasoning.extra);
  }

  const refusal = resolveAppend(state.refusal.length, delta.refusal, isString);
  if (refusal.gap) next.stale = true;
  else if (refusal.extra) {
    next.refusal = state.refusal + refusal.extra;
    onAppend?.("refusal", state.refusal.length, refusal.extra);
  }

  const calls = resolveAppend(state.tool_calls.length, delta.tool_calls, isArray);
  if (calls.gap) next.stale = true;
  else if (calls.extra) next.tool_calls = [...state.tool_calls, ...calls.extra.map(normalizeToolCall)];

  const results = resolveAppend(state.results.length, delta.results, isArray);
  if (results.gap) next.stale = true;
  else if (results.extra) next.results = [...state.results, ...results.extra.map(normalizeResult)];

  const analysis = resolveAppend(state.analysis.length, delta.analysis, isArray);
  if (analysis.gap) next.stale = true;
  else if (analysis.extra) next.analysis = [...state.analysis, ...analysis.extra.map(str)];

  const gap = text.gap || reasoning.gap || refusal.gap || calls.gap || results.gap || analysis.gap;
  if (delta.final === true && !gap) next.stale = false;

  if (isPaneStatus(delta.status)) next.status = delta.status;
  if ("error" in delta) next.error = normalizeError(delta.error);
  if ("metrics" in delta) next.metrics = mergeMetrics(state.metrics, delta.metrics);
  return next;
}
