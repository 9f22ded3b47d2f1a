// CPU time and RSS of a process or one of its threads, from /proc/<pid>[/task/<tid>]/stat (proc(5)).
import fs from 'node:fs';

/** USER_HZ, the unit of utime and stime: 100 on every Linux architecture Domus runs on. */
const CLK_TCK = 100;
const PAGE_SIZE = 4096;

export interface ProcStat {
  comm: string;
  cpuTimeMs: number;
  rssBytes: number;
}

/** Reads one stat file; undefined when the process or thread is gone. */
export function readProcStat(file: string): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may itself hold ") ": the fields start after the last ')'. After it, utime is
  // field 11, stime 12 and rss 21.
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return {
    comm: text.slice(text.indexOf('(') + 1, close),
    cpuTimeMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK,
    rssBytes: Number(fields[21]) * PAGE_SIZE,
  };
}
