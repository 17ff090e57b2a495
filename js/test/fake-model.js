// A stand-in for anywidget's model (get/set/save_changes/on/off/send) and a hand-cranked
// animation frame, so tests decide exactly when the view flushes.

export class FakeModel {
  /** @param {Record<string, unknown>} traits */
  constructor(traits) {
    /** @type {Record<string, unknown>} */
    this.traits = { ...traits };
    /** @type {Map<string, Set<(...args: any[]) => void>>} */
    this.listeners = new Map();
    /** @type {unknown[]} */
    this.sent = [];
  }

  /** @param {string} name */
  get(name) {
    return this.traits[name];
  }

  /** @param {string} name @param {unknown} value */
  set(name, value) {
    this.traits[name] = value;
  }

  save_changes() {}

  /** @param {string} event @param {(...args: any[]) => void} cb */
  on(event, cb) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(cb);
  }

  /** @param {string} event @param {(...args: any[]) => void} [cb] */
  off(event, cb) {
    if (cb) this.listeners.get(event)?.delete(cb);
    else this.listeners.delete(event);
  }

  /** @param {unknown} content */
  send(content) {
    this.sent.push(content);
  }

  /** @param {string} event @param {...unknown} args */
  emit(event, ...args) {
    for (const cb of [...(this.listeners.get(event) ?? [])]) cb(...args);
  }

  /** Kernel-side trait change: set, then fire change:<name>. @param {string} name @param {unknown} value */
  setTrait(name, value) {
    this.traits[name] = value;
    this.emit(`change:${name}`, this, value);
  }

  /** Kernel-side custom message. @param {unknown} msg */
  message(msg) {
    this.emit("msg:custom", msg, []);
  }

  listenerCount() {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}

/** Animation frames that run only when the test says so. */
export class ManualFrames {
  constructor() {
    /** @type {Map<number, () => void>} */
    this.pending = new Map();
    this.next = 1;
    this.requested = 0;
    this.requestFrame = (/** @type {() => void} */ cb) => {
      this.requested += 1;
      const id = this.next++;
      this.pending.set(id, cb);
      return id;
    };
    this.cancelFrame = (/** @type {number} */ id) => {
      this.pending.delete(id);
    };
  }

  /** Run every callback requested so far; returns how many ran. */
  run() {
    const cbs = [...this.pending.values()];
    this.pending.clear();
    for (const cb of cbs) cb();
    return cbs.length;
  }
}
