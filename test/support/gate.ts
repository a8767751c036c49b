/**
 * Holds a test double's answers back until released: `hold()` closes the gate and returns its
 * release; `passed()` is what the double awaits before answering (at once while open).
 */
export function createGate() {
  let gate: Promise<void> | null = null;
  return {
    passed: () => gate ?? Promise.resolve(),
    hold() {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = null;
        release();
      };
    },
  };
}
