// The analysis runs here, off the page's thread, so typing never waits for
// it. Messages: {id, op, arg} -> {id, ok, result} where result is the JSON
// text the wasm export returned.
import init, * as upkeep from "../pkg/upkeep_wasm.js";

const ready = init({ module_or_path: new URL("upkeep_wasm_bg.wasm", import.meta.url) });

const ops = {
  analyse: (arg) => upkeep.analyse(arg),
  fix_all: (arg) => upkeep.fix_all(arg),
  explain: (arg) => upkeep.explain(arg),
  split_nginx_t: (arg) => upkeep.split_nginx_t(arg),
  options: () => upkeep.options(),
};

self.onmessage = async (event) => {
  const { id, op, arg } = event.data;
  try {
    await ready;
    const started = performance.now();
    const result = ops[op](arg);
    self.postMessage({ id, ok: true, result, workerMs: performance.now() - started });
  } catch (err) {
    // A trap in the core (a bug): reported, and the worker is still usable
    // for the next request.
    self.postMessage({ id, ok: false, result: String(err && err.stack ? err.stack : err) });
  }
};
