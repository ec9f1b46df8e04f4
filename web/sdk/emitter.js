// on/off/emit for the engine's events. A handler that throws does not stop the others or the engine: its error
// is rethrown on its own task, where the page's error handling sees it.

export class Emitter {
  #handlers = new Map();

  on(event, handler) {
    if (typeof event !== 'string' || typeof handler !== 'function') return false;
    if (!this.#handlers.has(event)) this.#handlers.set(event, []);
    this.#handlers.get(event).push(handler);
    return true;
  }

  /** Removes one handler, or every handler of `event` when none is given. */
  off(event, handler) {
    const list = this.#handlers.get(event);
    if (!list) return false;
    if (handler === undefined) this.#handlers.delete(event);
    else {
      const i = list.indexOf(handler);
      if (i < 0) return false;
      list.splice(i, 1);
    }
    return true;
  }

  emit(event, ...args) {
    for (const handler of [...(this.#handlers.get(event) ?? [])]) {
      try {
        handler(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  clear() {
    this.#handlers.clear();
  }
}
