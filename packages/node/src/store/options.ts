/** LevelDB tuning knobs, with defaults for a validator on a 2-8 core machine. */
export interface StoreOptions {
  /** Directory of the LevelDB database. */
  path: string;
  /** Create a new store (and a new data key) if the directory holds none. */
  create: boolean;
  /** LevelDB block cache. */
  cacheSizeBytes: number;
  /** LevelDB memtable size before a flush to disk. */
  writeBufferSizeBytes: number;
  /** File handles LevelDB may keep open. */
  maxOpenFiles: number;
}

export const defaultStoreOptions: Omit<StoreOptions, "path"> = {
  create: false,
  cacheSizeBytes: 64 * 1024 * 1024,
  writeBufferSizeBytes: 16 * 1024 * 1024,
  maxOpenFiles: 512,
};
