// Inline SVG icons on a 24-unit grid: no icon font or external sprite (the CSP allows neither).
export const ICONS = {
  'new-vm': {
    d: 'M4 4h11M4 4a2 2 0 0 0-2 2v9a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2v-4M8 21h8M12 17v4M19 2v6M16 5h6',
  },
  monitor: { d: 'M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zM8 21h8M12 17v4' },
  play: { d: 'M7 4.8v14.4a.8.8 0 0 0 1.2.7l11.5-7.2a.8.8 0 0 0 0-1.4L8.2 4.1A.8.8 0 0 0 7 4.8z', fill: true },
  pause: { d: 'M6.5 4h3.5v16H6.5zM14 4h3.5v16H14z', fill: true },
  power: { d: 'M12 2.5v9M6.3 6.2a8 8 0 1 0 11.4 0' },
  trash: { d: 'M3.5 6.5h17M9.5 6.5V4h5v2.5M5.5 6.5l1 13.5h11l1-13.5M10 10.5v6M14 10.5v6' },
  camera: {
    d: 'M4 7h3l2-3h6l2 3h3a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1zM16 13a4 4 0 1 1-8 0a4 4 0 1 1 8 0z',
  },
  keyboard: {
    d: 'M4 6h16a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2zM6 10h.01M10 10h.01M14 10h.01M18 10h.01M7 14h10',
  },
  back: { d: 'M19 12H5M11 18l-6-6 6-6' },
  close: { d: 'M18 6 6 18M6 6l12 12' },
  alert: { d: 'M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0zM12 9v4M12 17h.01' },
  info: { d: 'M22 12a10 10 0 1 1-20 0a10 10 0 1 1 20 0zM12 16v-5M12 8h.01' },
  check: { d: 'M22 12a10 10 0 1 1-20 0a10 10 0 1 1 20 0zM7.5 12.5l3 3 6-6.5' },
  terminal: { d: 'M4 4h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zM6.5 9l3 3-3 3M12 15h5' },
  kernel: {
    d: 'M7 5h10a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2zM9.5 9.5h5v5h-5zM9 2v3M15 2v3M9 19v3M15 19v3M2 9h3M2 15h3M19 9h3M19 15h3',
  },
  disc: { d: 'M21 12a9 9 0 1 1-18 0a9 9 0 1 1 18 0zM14.5 12a2.5 2.5 0 1 1-5 0a2.5 2.5 0 1 1 5 0z' },
  disk: {
    d: 'M22 12H2M5.5 5.1 2 12v6a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2v-6l-3.5-6.9A2 2 0 0 0 16.7 4H7.3a2 2 0 0 0-1.8 1.1zM6 16h.01M10 16h.01',
  },
  server: {
    d: 'M4 3h16a1 1 0 0 1 1 1v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1zM4 13h16a1 1 0 0 1 1 1v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-6a1 1 0 0 1 1-1zM7 7h.01M7 17h.01',
  },
  plug: { d: 'M9 2v5M15 2v5M6 7h12v4a6 6 0 0 1-12 0zM12 17v5' },
  'chevron-down': { d: 'M6 9.5l6 6 6-6' },
  menu: { d: 'M4 6.5h16M4 12h16M4 17.5h16' },
  details: {
    d: 'M9 3.5h6a1 1 0 0 1 1 1V6H8V4.5a1 1 0 0 1 1-1zM8 5H6a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2h-2M8 11h8M8 15h5',
  },
  trace: { d: 'M22 12h-4l-3 8.5L9 3.5 6 12H2' },
  reboot: { d: 'M21.5 4v6h-6M19.6 15a8.5 8.5 0 1 1-2-8.8l3.9 3.8' },
  reset: { d: 'M13 2.5 4 13.5h7.5l-1 8 9-11H12l1-8z' },
  save: { d: 'M19 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h11l5 5v11a2 2 0 0 1-2 2zM17 21v-7.5H7V21M7 3v4.5h8' },
  quit: { d: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9' },
  autostart: { d: 'M17 2l4 4-4 4M3 11V10a4 4 0 0 1 4-4h14M7 22l-4-4 4-4M21 13v1a4 4 0 0 1-4 4H3' },
  failed: { d: 'M22 12a10 10 0 1 1-20 0a10 10 0 1 1 20 0zM15 9l-6 6M9 9l6 6' },
  clear: { d: 'M21 12a9 9 0 1 1-18 0a9 9 0 1 1 18 0zM5.6 5.6l12.8 12.8' },
  filter: { d: 'M21 4H3l7 8.3V18l4 2v-7.7L21 4z' },
  tick: { d: 'M5 12.5l4.5 4.5L19 7.5' },
  /** Keeps a menu item's text aligned with its checked siblings. */
  blank: { d: '' },
  fullscreen: { d: 'M4 9V4h5M15 4h5v5M20 15v5h-5M9 20H4v-5' },
  'send-key': { d: 'M3 12h13M12 7l5 5-5 5M20.5 5v14' },
  plus: { d: 'M12 5v14M5 12h14' },
  migrate: { d: 'M3 7h13M12 3l4 4-4 4M21 17H8M12 13l-4 4 4 4' },
  more: { d: 'M4 12a2 2 0 1 0 4 0a2 2 0 1 0-4 0zM10 12a2 2 0 1 0 4 0a2 2 0 1 0-4 0zM16 12a2 2 0 1 0 4 0a2 2 0 1 0-4 0z', fill: true },
  'new-window': { d: 'M14 3h7v7M21 3l-9 9M19 14v5a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2h5' },
  copy: { d: 'M9 9h11v11H9zM5 15H4V4h11v1' },
} satisfies Record<string, { d: string; fill?: boolean }>;

export type IconName = keyof typeof ICONS;

