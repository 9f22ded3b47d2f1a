// The Chromium command line `domus webshell --open` builds: as root it adds --no-sandbox and says why.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chromiumArgs } from './browser.js';

const URL = 'http://127.0.0.1:4321/?token=one-time';

describe('chromiumArgs', () => {
  it('opens an app window on the address with its own profile, sandboxed, for a normal user', () => {
    const { args, warning } = chromiumArgs(URL, '/home/u/.local/share/domus/chromium-profile', 1000);
    assert.deepEqual(args, [
      `--app=${URL}`,
      '--user-data-dir=/home/u/.local/share/domus/chromium-profile',
      '--no-first-run',
      '--disable-background-networking',
      '--window-size=1200,800',
    ]);
    assert.equal(warning, undefined);
  });

  it('as root adds --no-sandbox (Chromium exits with code 1 otherwise) with a warning saying why', () => {
    const { args, warning } = chromiumArgs(URL, '/root/.local/share/domus/chromium-profile', 0);
    assert.ok(args.includes('--no-sandbox'));
    assert.equal(args[0], `--app=${URL}`);
    assert.match(warning ?? '', /root.*--no-sandbox/);
  });

  it('takes the uid of this process by default', () => {
    const { args } = chromiumArgs(URL, '/p');
    assert.equal(args.includes('--no-sandbox'), process.getuid?.() === 0);
  });
});
