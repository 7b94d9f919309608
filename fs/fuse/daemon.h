/* daemon.h - the daemon's state, shared by its request handlers.
 *
 * Everything here is set up before the FUSE loop starts and is immutable
 * afterwards, except what the modules it points to guard themselves.
 */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backing.h"
#include "node-cache.h"
#include "inode.h"
#include "kernel-cache.h"
#include "mailbags.h"

typedef struct {
        Backing backing;
        InodeTable *inodes;
        NodeCache *dirs;  /* folders requests were made in lately */
        NodeCache *nodes; /* other nodes, for their extended attributes */
        double entry_timeout; /* seconds the kernel may cache names */
        double attr_timeout;  /* seconds the kernel may cache attributes */
        /* The daemon runs as root: files a client creates are handed to the
         * client's uid and gid, as a file server would. */
        bool chown_created;
        /* A path is built from the node table and then opened; a rename
         * between the two would send the open to the name's old place (or
         * to nothing). Held for reading across each such build and open
         * (ops_node_open, ops_dir_open, opendir, the open of a file), for
         * writing across a rename and its table update. Never taken twice
         * by one thread. */
        GRWLock names_lock;
        Mailbags mailbags;
        /* How many chmods served gave a file set-user-ID or set-group-ID:
         * a direct-I/O handle that looked at its file since the last one
         * writes without looking again (file_drop_privileges). */
        atomic_uint_fast64_t privileges_given;
        /* Held across a chmod served and across a look at a file's mode
         * and the chmod that takes set-user-ID away, so that neither
         * undoes the other. Nothing is taken under it. */
        GMutex privileges_lock;
        /* A file's reads and writes may be passed to its backing file by
         * the kernel (inode.h): asked for by -o passthrough (on by
         * default where libfuse has it), and cleared by the INIT request,
         * answered before any other, when the kernel cannot, or by the
         * kernel's first refusal (file_backing_open). */
        atomic_bool passthrough;
        /* Sends the kernel invalidations off the requests' threads. */
        KernelCache *kernel_cache;
} Mailbagfs;

extern const struct fuse_lowlevel_ops mailbagfs_ops;
