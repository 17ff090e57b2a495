import { describe, expect, it } from "vitest";
import { createFrameScheduler } from "../src/throttle.js";
import { ManualFrames } from "./fake-model.js";

describe("createFrameScheduler", () => {
  it("coalesces any number of schedules into one flush per frame", () => {
    const frames = new ManualFrames();
    let flushes = 0;
    const s = createFrameScheduler(() => flushes++, frames);
    for (let i = 0; i < 100; i++) s.schedule();
    expect(frames.requested).toBe(1);
    frames.run();
    expect(flushes).toBe(1);
    frames.run();
    expect(flushes).toBe(1);
  });

  it("never drops the last change: a schedule during or after a flush gets its own frame", () => {
    const frames = new ManualFrames();
    /** @type {number[]} */
    const seen = [];
    let value = 0;
    const s = createFrameScheduler(() => seen.push(value), frames);
    for (let i = 1; i <= 50; i++) {
      value = i;
      s.schedule();
      if (i % 7 === 0) frames.run();
    }
    frames.run();
    expect(seen.at(-1)).toBe(50);
    expect(s.pending).toBe(false);
  });

  it("flushNow runs immediately and cancels the pending frame", () => {
    const frames = new ManualFrames();
    let flushes = 0;
    const s = createFrameScheduler(() => flushes++, frames);
    s.schedule();
    s.flushNow();
    expect(flushes).toBe(1);
    expect(frames.run()).toBe(0);
  });

  it("does nothing after cancel", () => {
    const frames = new ManualFrames();
    let flushes = 0;
    const s = createFrameScheduler(() => flushes++, frames);
    s.schedule();
    s.cancel();
    s.schedule();
    frames.run();
    expect(flushes).toBe(0);
  });

  it("falls back to the real requestAnimationFrame", async () => {
    let flushes = 0;
    const s = createFrameScheduler(() => flushes++);
    s.schedule();
    s.schedule();
    await new Promise((r) => setTimeout(r, 60));
    expect(flushes).toBe(1);
  });
});
