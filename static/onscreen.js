// Which bars are on (or near) the screen. The browser already decides that for every bar with
// `content-visibility: auto` and says so with an event; an IntersectionObserver with a target
// per bar would compute it again for thousands of bars on every frame that moves anything.

const STATE_CHANGE = "contentvisibilityautostatechange";
const HAS_STATE_CHANGE = typeof ContentVisibilityAutoStateChangeEvent === "function";

/** Calls `onChange(node, onScreen)` as watched nodes come near the screen or leave it. */
export class ScreenWatch {
  constructor(onChange) {
    this.onChange = onChange;
    this.listener = (event) => this.onChange(event.currentTarget, !event.skipped);
    this.observer = HAS_STATE_CHANGE ? null : new IntersectionObserver((entries) => {
      for (const entry of entries) this.onChange(entry.target, entry.isIntersecting);
    });
  }

  observe(node) {
    if (this.observer) this.observer.observe(node);
    else node.addEventListener(STATE_CHANGE, this.listener);
  }

  unobserve(node) {
    if (this.observer) this.observer.unobserve(node);
    else node.removeEventListener(STATE_CHANGE, this.listener);
  }
}
