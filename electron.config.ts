// electron-builder configuration (`npm run dist`). The renderer, host, runner and CLI are prebuilt
// into dist/ by build/build.mjs, so packaging only collects files.
import type { Configuration } from 'electron-builder';

const config: Configuration = {
  appId: 'org.domus.manager',
  productName: 'Domus',
  copyright: 'Domus contributors',
  directories: { output: 'out', buildResources: 'build/resources' },
  files: ['dist/**', 'bin/**', 'package.json', '!**/*.map'],
  // The runner is a separate process (Electron run as Node) that reads v86's wasm from disk.
  asarUnpack: ['dist/runner/**', 'node_modules/v86/**'],
  linux: {
    target: ['AppImage', 'deb'],
    category: 'System;Emulator',
    maintainer: 'Domus contributors <domus@example.org>',
    synopsis: 'Desktop virtual-machine manager',
  },
  deb: { depends: ['seabios'] },
  mac: { target: ['dmg'], category: 'public.app-category.developer-tools' },
  win: { target: ['nsis'] },
};

export default config;
