/*
 * sim/storage.h - the storage port ("flash") on Linux: a small key-value store per device.
 *
 * Three kinds behind one handle:
 *   - file: a directory per device, one file per key. A write goes to "<key>.tmp", is
 *     optionally fsync()ed, then rename()d over "<key>": a reader (or a restart after a
 *     crash) sees the old value or the new one, never a torn one. Without fsync a power
 *     loss of the whole machine may lose the last writes (rename is still atomic for a
 *     process crash or kill -9, which is what the simulator exercises); fsync costs a disk
 *     flush per write, so it is an option (off by default).
 *   - memory: kept in the process, lost when it ends (tests, the fleet).
 *   - none: reads find nothing, writes are accepted and forgotten.
 *
 * Return values follow fw_ports.h (they are the port): 0, FW_ERR_NOT_FOUND, FW_ERR_IO,
 * FW_ERR_TOO_BIG (value larger than the caller's buffer), FW_ERR_INVAL (bad key).
 * Keys: 1..63 characters of [A-Za-z0-9_-].
 *
 * Threading: a store belongs to its device's owning thread.
 * Ownership: the caller frees a store with sim_storage_free(); buffers are borrowed.
 */
#ifndef SIM_STORAGE_H
#define SIM_STORAGE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sim_storage;

/** A file-backed store in dir (created with its parents, mode 0700, if missing). fsync:
 *  flush each write to disk before the rename. 0, SIM_ERR_INVAL, SIM_ERR_IO, SIM_ERR_NOMEM. */
int sim_storage_file_open(const char *dir, bool fsync, struct sim_storage **out);

/** A store in memory. 0 or SIM_ERR_NOMEM. */
int sim_storage_memory_open(struct sim_storage **out);

/** A store that keeps nothing. 0 or SIM_ERR_NOMEM. */
int sim_storage_none_open(struct sim_storage **out);

/** Free the handle (files stay on disk). NULL is fine. */
void sim_storage_free(struct sim_storage *s);

/** Copy the value of key into buf (at most cap bytes) and set *len. 0, FW_ERR_NOT_FOUND,
 *  FW_ERR_TOO_BIG (nothing copied, *len = the size needed), FW_ERR_IO, FW_ERR_INVAL. */
int sim_storage_read(struct sim_storage *s, const char *key, void *buf, size_t cap,
                     size_t *len);

/** Replace the value of key (atomically for the file kind). 0, FW_ERR_IO, FW_ERR_INVAL. */
int sim_storage_write(struct sim_storage *s, const char *key, const void *buf, size_t len);

/** The directory of a file store, or NULL for the other kinds. */
const char *sim_storage_dir(const struct sim_storage *s);

#ifdef __cplusplus
}
#endif

#endif /* SIM_STORAGE_H */
