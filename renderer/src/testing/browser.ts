// The few browser globals the stores touch, for node: the page's address (the manager, no route),
// a window that takes event listeners, and an in-memory localStorage.

class MemoryStorage {
  private readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, String(value));
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

function define(name: string, value: unknown): void {
  Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
}

export function installBrowserGlobals(): void {
  define('location', { hash: '', pathname: '/', search: '' });
  define('window', Object.assign(new EventTarget(), { close: () => undefined }));
  define('localStorage', new MemoryStorage());
}
