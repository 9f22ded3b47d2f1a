// Files that are not images (for tests of every place that opens a path someone named).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A FIFO, /dev/zero, a directory, a socket and a link to the FIFO, each with the kind it must be reported as. */
export function makeSpecialFiles(dir: string): Promise<{ cases: [string, RegExp][]; close: () => void }> {
  const fifo = path.join(dir, 'fifo.img');
  execFileSync('mkfifo', [fifo]);
  const link = path.join(dir, 'link-to-fifo.img');
  fs.symlinkSync(fifo, link);
  const folder = path.join(dir, 'folder.img');
  fs.mkdirSync(folder);
  const sock = path.join(dir, 'socket.img');
  const server = net.createServer();
  return new Promise((resolve) =>
    server.listen(sock, () =>
      resolve({
        cases: [
          [fifo, /is a FIFO \(named pipe\), not a regular file/],
          ['/dev/zero', /is a character device, not a regular file/],
          [folder, /is a directory, not a regular file/],
          [sock, /is a socket, not a regular file/],
          [link, /is a symbolic link to a FIFO \(named pipe\), not a regular file/],
        ],
        close: () => server.close(),
      }),
    ),
  );
}

