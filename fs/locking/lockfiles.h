/* lockfiles.h - the live Mail 2.x (-V20) lock files.
 *
 * A P1/<queue>.0NN file holds its queue's session from its creation until
 * it is unlinked (or renamed away), not while it is open: this table
 * remembers which lease reference each such file carries, so unlink can
 * release it and a dead holder's file can be found and reclaimed.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "profile.h"

typedef struct LockFiles LockFiles;

/* Paths are the file's inside its postoffice ("P1/INQUEUE3.001"), so a
 * rename of the postoffice folder changes nothing here. */
typedef struct {
        char path[PO_NAME_MAX];   /* inside the postoffice: lock folder / 8.3 name */
        char mailbag[PO_NAME_MAX];
        uint64_t ref;
        pid_t pid;                /* the creator; the daemon's own for files found at start */
        uint64_t parent_node;     /* the folder's node id, for the kernel's cache; 0 if unknown */
        dev_t dev;                /* the file itself: only it is ever removed */
        ino_t ino;
} LockFile;

LockFiles *lockfiles_new(void);
void lockfiles_free(LockFiles *files);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LockFiles, lockfiles_free)

/* Whether a lock file is still there (for lockfiles_add()). */
typedef bool (*LockFilePresentFn)(void *opaque);

/* Records that @path now carries @ref: 0, or 1 when it carried another
 * reference, whose entry is copied to @replaced (its hold must be
 * released). With @present, only if @present(@opaque) says the file is
 * still there, asked under the registry's lock: its removal (the unlink,
 * then lockfiles_take_path) either came first, and the file is seen gone
 * (-ENOENT, nothing recorded), or finds the entry. A look before the call
 * would lose a removal between the two, and the hold with it. */
int lockfiles_add(LockFiles *files, const char *path, const char *mailbag, uint64_t ref,
                  pid_t pid, uint64_t parent_node, const struct stat *st, LockFile *replaced,
                  LockFilePresentFn present, void *opaque);

/* The entry for @path, if any, is removed and copied to @out. */
bool lockfiles_take_path(LockFiles *files, const char *path, LockFile *out);

/* The entry carrying @ref, if any, is removed and copied to @out. */
bool lockfiles_take_ref(LockFiles *files, uint64_t ref, LockFile *out);

/* Whether @path is recorded, for any process. */
bool lockfiles_known(LockFiles *files, const char *path);

/* Whether @path is recorded for process @pid. */
bool lockfiles_held_by(LockFiles *files, const char *path, pid_t pid);
