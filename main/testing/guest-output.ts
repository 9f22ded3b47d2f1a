// What the sample guest's /init announces on ttyS0 about itself (build/guests/files/init).

/**
 * Throws naming the module when the guest reported a kernel module that did not load: a device
 * would then be missing silently (a balloon that never answers, no power button), and every test
 * after would fail for a reason far from the cause.
 */
export function assertGuestModulesLoaded(serialText: string): void {
  const failed = [...serialText.matchAll(/DOMUS-MODULE-FAILED (\S+)/g)].map((m) => m[1]);
  if (failed.length) {
    throw new Error(
      `the sample guest's kernel module(s) ${[...new Set(failed)].join(', ')} failed to load at boot ` +
        `(rebuild the guests: npm run guests -- --force; the build's boot check names the cause)`,
    );
  }
}
