/*
 * sim/fs.h - the two folder operations every layer above needs: make a path with its
 * parents, and remove a tree (temporary flash, brokers' data, test PKIs). Library sim_util.
 */
#ifndef SIM_FS_H
#define SIM_FS_H

#ifdef __cplusplus
extern "C" {
#endif

/** mkdir -p with mode 0700: 0, or -1 with errno (an existing folder is fine). */
int sim_fs_mkdir_p(const char *path);

/** The whole file (or pipe) at path into a new NUL-terminated buffer (*out, free it), its
 *  length in *len (NULL: not wanted). 0, or -1 with errno: that of open or read, EFBIG
 *  when it holds more than max bytes, ENOMEM. */
int sim_fs_read_all(const char *path, size_t max, char **out, size_t *len);

/** rm -rf: everything below path and path itself, never following a symbolic link.
 *  NULL or "" does nothing. Best effort: what cannot be removed stays. */
void sim_fs_remove_tree(const char *path);

#ifdef __cplusplus
}
#endif

#endif /* SIM_FS_H */
