// A renderer module loaded into Chromium (the engine Electron renders with), for unit tests of code
// that runs on the browser's own DOM (DOMParser, XMLSerializer), which node does not have.
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

export interface ModuleInChromium<M> {
  /**
   * Runs `steps` in the page with the module. The steps are sent as source text: they may use only
   * their parameters, and what goes in and comes out must survive JSON.
   */
  run<A, R>(steps: (lib: M, arg: A) => R, arg: A): Promise<R>;
  close(): Promise<void>;
}

export async function moduleInChromium<M>(file: string): Promise<ModuleInChromium<M>> {
  const bundle = await build({ entryPoints: [file], bundle: true, write: false, format: 'iife', globalName: 'moduleUnderTest', target: 'es2022', logLevel: 'warning' });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const page = await browser.newPage();
  // tsx compiles the tests with esbuild's keepNames, so the steps sent to the page call __name.
  await page.addScriptTag({ content: `var __name = (fn) => fn;\n${bundle.outputFiles[0].text}` });
  return {
    run: <A, R>(steps: (lib: M, arg: A) => R, arg: A) =>
      page.evaluate(
        ([source, a]) => (0, eval)(`(${source})`)((globalThis as unknown as { moduleUnderTest: unknown }).moduleUnderTest, a),
        [steps.toString(), arg] as const,
      ) as Promise<R>,
    close: () => browser.close(),
  };
}
