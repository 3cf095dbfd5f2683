// Runs async work one at a time per key, in the order asked: a turn starts when the key's previous turn settled.
//
// Why content writes take turns per task file: Linux serialises buffered writes to one file on the inode's lock
// (ext4 takes it for every write), so two of libuv's threads writing pieces of the same task never write at the
// same time anyway, and the one that waits spins on the lock while the other copies (rwsem_spin_on_owner in a
// cold 1 GiB download profile: 1 % of the daemon's CPU on a quiet machine, 5-6 % under load, on 2 cores taken
// from the main thread).

export class KeyedTurns<K> {
  /** The last turn asked for, per key; removed when it settles and no later turn was asked for. */
  private readonly tails = new Map<K, Promise<unknown>>();

  /** Runs `work` once every turn asked for `key` before it has settled; resolves or rejects as `work` does. */
  run<T>(key: K, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const turn = previous ? previous.then(work, work) : work();
    const tail = turn.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return turn;
  }

  /** Keys with a turn running or waiting. */
  get size(): number {
    return this.tails.size;
  }
}
