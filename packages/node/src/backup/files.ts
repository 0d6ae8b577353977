/** File system helpers for writing archives and swapping stores durably. */
import { lstat, open } from "node:fs/promises";
import { backupIoError } from "./errors.ts";

/** An error from the file system (it names a syscall), as opposed to a store or caller error. */
export function isFileSystemError(e: unknown): boolean {
  return typeof e === "object" && e !== null && "syscall" in e;
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return false;
    throw backupIoError(`checking ${path}`, path, e);
  }
}

/** fsync of a file, or of a directory (which makes the renames and new files in it durable). */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
