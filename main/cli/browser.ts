// How `domus webshell --open` starts Chromium: an app window on the web shell's one-time address.
// That address sits in Chromium's command line, which every local user can read (ps,
// /proc/PID/cmdline); it is spent by the time the page has loaded, so what they read opens nothing.
import fs from 'node:fs';

const BROWSERS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function findBrowser(): string | undefined {
  return BROWSERS.find((b) => fs.existsSync(b));
}

export interface BrowserLaunch {
  args: string[];
  /** Something the user should know about how the browser runs. */
  warning?: string;
}

/** Chromium's arguments for the app window on `url`; `uid` is who runs it (root needs --no-sandbox). */
export function chromiumArgs(url: string, profileDir: string, uid: number | undefined = process.getuid?.()): BrowserLaunch {
  const args = [`--app=${url}`, `--user-data-dir=${profileDir}`, '--no-first-run', '--disable-background-networking', '--window-size=1200,800'];
  if (uid !== 0) return { args };
  return {
    args: [...args, '--no-sandbox'],
    warning:
      'running as root: Chromium refuses to start as root with its sandbox, so it runs with --no-sandbox ' +
      '(a compromised page would not be contained); run Domus as a normal user to keep the sandbox',
  };
}
