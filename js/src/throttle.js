// Coalesces DOM writes into one per animation frame: any number of schedule() calls between two
// frames cause exactly one flush, and the last change is never dropped because the flush reads
// the latest state rather than the message that scheduled it.

/**
 * @typedef {{
 *   requestFrame?: (cb: () => void) => number,
 *   cancelFrame?: (handle: number) => void,
 * }} FrameApi
 * @typedef {{schedule: () => void, flushNow: () => void, cancel: () => void, readonly pending: boolean}} FrameScheduler
 */

/** @returns {Required<FrameApi>} */
function defaultFrameApi() {
  if (typeof requestAnimationFrame === "function") {
    return {
      requestFrame: (cb) => requestAnimationFrame(() => cb()),
      cancelFrame: (h) => cancelAnimationFrame(h),
    };
  }
  return {
    requestFrame: (cb) => /** @type {number} */ (/** @type {unknown} */ (setTimeout(cb, 16))),
    cancelFrame: (h) => clearTimeout(h),
  };
}

/**
 * @param {() => void} flush called at most once per frame while work is pending
 * @param {FrameApi} [api] injectable frame functions (tests drive frames by hand)
 * @returns {FrameScheduler}
 */
export function createFrameScheduler(flush, api = {}) {
  const fallback = defaultFrameApi();
  const requestFrame = api.requestFrame ?? fallback.requestFrame;
  const cancelFrame = api.cancelFrame ?? fallback.cancelFrame;
  /** @type {number | null} */
  let handle = null;
  let cancelled = false;

  const run = () => {
    handle = null;
    if (!cancelled) flush();
  };

  return {
    schedule() {
      if (handle === null && !cancelled) handle = requestFrame(run);
    },
    flushNow() {
      if (handle !== null) cancelFrame(handle);
      run();
    },
    cancel() {
      cancelled = true;
      if (handle !== null) cancelFrame(handle);
      handle = null;
    },
    get pending() {
      return handle !== null;
    },
  };
}
