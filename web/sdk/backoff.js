// When to retry a broken connection, as the native SDK does: quickly at first (most breaks are brief), then
// once a second, bounded by the reconnect window.

const STEPS_MS = [100, 200, 400, 800, 1000];

export class Backoff {
  #attempt = 0;

  /** The delay before the next attempt; the last step repeats. */
  next() {
    const step = STEPS_MS[Math.min(this.#attempt, STEPS_MS.length - 1)];
    this.#attempt += 1;
    return step;
  }
}
