/* dir-cache.h - descriptors of the folders requests were made in lately,
 * so that a busy folder (P1, MAI/MAx, KEY, MBG) is not opened, checked and
 * closed again for every name looked up, made or removed in it.
 *
 * An entry is the O_PATH descriptor of a folder node, checked to be that
 * node's backing folder when it was opened (ops_dir_open). It serves for
 * at most the time the kernel may cache a name (-o cache_timeout), and
 * every entry is dropped by a rename or a folder removal the daemon
 * serves. Within that time a folder renamed on the backing store by
 * someone else is still reached through its descriptor, the folder the
 * kernel knows, as the kernel itself keeps reaching it by its cached
 * name; no name is looked up to reach it. With cache_timeout=0 nothing
 * is kept. At most DIR_CACHE_MAX descriptors.
 */
#pragma once

#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "inode.h"

#define DIR_CACHE_MAX 64

typedef struct DirCache DirCache;
typedef struct DirCacheEntry DirCacheEntry;

/* A folder descriptor in use: a cached one (@entry set, released with
 * dir_ref_release) or one of its own (closed then). @fd is -errno when
 * there is none. */
typedef struct {
        int fd;
        DirCache *cache;
        DirCacheEntry *entry;
} DirRef;

/* Entries serve for @ttl_seconds; 0 keeps none. */
DirCache *dir_cache_new(double ttl_seconds);
/* Closes every descriptor; no reference may be held. NULL is a no-op. */
void dir_cache_free(DirCache *cache);

/* The cached descriptor of folder node @nodeid, if it is the backing
 * folder @id and fresh; otherwise a DirRef with fd -1. */
DirRef dir_cache_get(DirCache *cache, fuse_ino_t nodeid, InodeBackingId id);

/* @fd, a checked O_PATH descriptor of folder node @nodeid (backing @id),
 * taken over: kept for the next requests when the cache keeps anything,
 * and returned as a reference either way. */
DirRef dir_cache_add(DirCache *cache, fuse_ino_t nodeid, InodeBackingId id, int fd);

/* Ends the use of @ref (its descriptor is closed, now or once the cache
 * lets it go) and leaves fd -1 behind. */
void dir_ref_release(DirRef *ref);
#define autorelease_dir __attribute__((cleanup(dir_ref_release)))

/* Drops every entry: a folder may have another path now. */
void dir_cache_drop_all(DirCache *cache);
