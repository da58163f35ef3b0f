/**
 * Where a unit test listens, on any OS: a named pipe (\\.\pipe\...) on Windows, a unix socket in a
 * short private directory elsewhere (removed at teardown). Node's net module serves and connects
 * to both by path, so the code under test is the same.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

export const WINDOWS = process.platform === 'win32';

/** A fresh path to listen on; `name` ends it (e.g. 'cni.sock'). */
export function localEndpointPath(t: Test, name = 'test.sock'): string {
  if (WINDOWS) return `\\\\.\\pipe\\antrea-ut-${process.pid}-${randomBytes(4).toString('hex')}-${name}`;
  const dir = mkdtempSync(join(tmpdir(), 'ats-ep-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, name);
}

/** A path nobody listens on (a connection to it fails with ENOENT). */
export function absentEndpointPath(name = 'absent.sock'): string {
  if (WINDOWS) return `\\\\.\\pipe\\antrea-ut-absent-${process.pid}-${randomBytes(4).toString('hex')}-${name}`;
  return join(tmpdir(), `ats-absent-${process.pid}-${randomBytes(4).toString('hex')}`, name);
}
