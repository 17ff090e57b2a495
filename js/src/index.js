// anywidget entry: wires the model (traits + custom messages) to the Store and the GridView.
// Messages only update the Store; the DOM is written once per animation frame from its state.

import "./styles.css";
import { PROTOCOL_VERSION, parseMessage, stopMessage, syncMessage, unpackMessage, voteMessage } from "./protocol.js";
import { GridView } from "./render.js";
import { Store } from "./state.js";
import { createFrameScheduler } from "./throttle.js";

/**
 * The part of anywidget's model this view uses.
 * @typedef {{
 *   get: (name: string) => any,
 *   set?: (name: string, value: unknown) => void,
 *   save_changes?: () => void,
 *   on: (event: string, callback: (...args: any[]) => void) => void,
 *   off: (event: string, callback?: (...args: any[]) => void) => void,
 *   send: (content: unknown, callbacks?: unknown, buffers?: unknown) => void,
 * }} WidgetModel
 * @typedef {{
 *   requestFrame?: (cb: () => void) => number,
 *   cancelFrame?: (handle: number) => void,
 *   now?: () => number,
 *   tickMs?: number,
 *   frameBudgetMs?: number,
 *   budgetClock?: () => number,
 * }} RenderOptions
 */

/** Interval of the clock-driven display (elapsed time, stall markers). */
const TICK_MS = 200;
/** A view with stale panes asks the kernel for a snapshot at most this often. */
const SYNC_INTERVAL_MS = 1000;

/**
 * Render the grid into `el`. Returns the cleanup anywidget calls when the view is removed.
 * `options` is for tests: injected frame and clock functions.
 * @param {{model: WidgetModel, el: HTMLElement}} ctx
 * @param {RenderOptions} [options]
 * @returns {() => void}
 */
export function renderGrid({ model, el }, options = {}) {
  const now = options.now ?? (() => Date.now());
  const store = new Store();
  const view = new GridView(el, {
    now,
    onStop: (paneId) => model.send(stopMessage(paneId)),
    onVote: (choice) => model.send(voteMessage(choice)),
    frameBudgetMs: options.frameBudgetMs,
    budgetClock: options.budgetClock,
  });
  /** @type {import("./throttle.js").FrameScheduler} */
  const scheduler = createFrameScheduler(() => {
    if (view.flush(store)) scheduler.schedule();
  }, options);

  // A snapshot may be synced together with a new run; handle the run first so the snapshot is
  // applied to the new run's (empty) state rather than compared with the previous run's seqs.
  const syncRun = () => {
    const run = model.get("run");
    if (run?.run_id !== undefined && run.run_id !== store.state.run.run_id) store.setRun(run);
  };
  const onPanes = () => {
    store.setPanes(model.get("panes"));
    scheduler.schedule();
  };
  const onSnapshot = () => {
    syncRun();
    store.setSnapshot(model.get("snapshot"));
    scheduler.schedule();
  };
  const onRun = () => {
    store.setRun(model.get("run"));
    scheduler.schedule();
  };
  const onVote = () => view.setVote(model.get("vote"));
  let lastSync = -Infinity;
  // A view opened mid-run (or reloaded) holds an older snapshot than the deltas it now gets: the
  // offsets show the gap, the pane is marked stale, and the kernel is asked for a fresh snapshot.
  const syncIfStale = () => {
    const t = now();
    if (t - lastSync < SYNC_INTERVAL_MS || store.state.run.status !== "running") return;
    if (!Object.values(store.state.states).some((s) => s.stale)) return;
    lastSync = t;
    model.send(syncMessage());
  };
  /** @param {unknown} raw @param {unknown} [buffers] */
  const onMessage = (raw, buffers) => {
    let msg;
    try {
      msg = unpackMessage(raw, buffers);
    } catch (err) {
      console.warn("llmgrid: could not unpack message", err);
      return;
    }
    const parsed = parseMessage(msg);
    if (!parsed.ok) {
      console.warn(`llmgrid: ignoring message (${parsed.reason}); this view speaks v${PROTOCOL_VERSION}`);
      return;
    }
    try {
      store.applyDelta(parsed.message, now());
    } catch (err) {
      console.warn("llmgrid: could not apply delta", err);
      return;
    }
    syncIfStale();
    scheduler.schedule();
  };

  store.setPanes(model.get("panes"));
  store.setRun(model.get("run"));
  store.setSnapshot(model.get("snapshot"));
  if (view.flush(store)) scheduler.schedule();
  onVote();

  model.on("change:panes", onPanes);
  model.on("change:vote", onVote);
  model.on("change:snapshot", onSnapshot);
  model.on("change:run", onRun);
  model.on("msg:custom", onMessage);
  const timer = setInterval(() => view.tick(store), options.tickMs ?? TICK_MS);

  return () => {
    clearInterval(timer);
    scheduler.cancel();
    model.off("change:panes", onPanes);
    model.off("change:snapshot", onSnapshot);
    model.off("change:run", onRun);
    model.off("change:vote", onVote);
    model.off("msg:custom", onMessage);
    view.destroy();
  };
}

export default { render: renderGrid };
