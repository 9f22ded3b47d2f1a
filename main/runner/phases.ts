// Phase timings for the runner's log (save, restore): wall time and the process's CPU time (all its
// threads) per phase. On a loaded machine the wall time says little; the CPU time says what a phase costs.

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

export class Phases {
  private readonly parts: string[] = [];
  private wall: number;
  private cpu: number;

  /** `fromProcessStart`: the first phase began when the process did (node start and module loading). */
  constructor(fromProcessStart = false) {
    this.wall = fromProcessStart ? 0 : performance.now();
    this.cpu = fromProcessStart ? 0 : cpuMs();
  }

  /** Ends the current phase, named `name`, and starts the next. */
  lap(name: string): void {
    const wall = performance.now();
    const cpu = cpuMs();
    this.parts.push(`${name} ${Math.round(wall - this.wall)} ms (cpu ${Math.round(cpu - this.cpu)})`);
    this.wall = wall;
    this.cpu = cpu;
  }

  toString(): string {
    return this.parts.join(', ');
  }
}
