// How every benchmark script runs: a watchdog that bounds the whole run, cleanup on SIGINT/SIGTERM, on failure
// and at the end, and a non-zero exit only when something crashed (numbers never fail a benchmark).

/**
 * Runs `main`, then `cleanup`. `cleanup` runs once, whichever of the end of main, a signal or the watchdog asks
 * first; the others wait for that run.
 */
export async function runBenchmark(o: {
  main: () => Promise<void>;
  cleanup: () => Promise<void>;
  watchdogMs: number;
  log: (msg: string) => void;
}): Promise<void> {
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= o.cleanup());
  const watchdog = setTimeout(() => {
    o.log(`watchdog: still running after ${o.watchdogMs / 1000} s; stopping`);
    void cleanup().finally(() => process.exit(1));
  }, o.watchdogMs);
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      o.log(`${sig}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    await o.main();
  } catch (e) {
    o.log(`failed: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
}
