/* node-cache.h - descriptors of the nodes requests were made on lately,
 * so that a busy folder (P1, MAI/MAx, KEY, MBG) is not opened, checked and
 * closed again for every name looked up, made or removed in it, nor a
 * file for each of the extended attributes a file server asks of it, or
 * for each open of it (a KEY or MBG file, once or twice a message).
 *
 * An entry is the O_PATH descriptor of a node, checked to be that node's
 * backing file or folder when it was opened (ops_dir_open,
 * ops_node_ref). It serves for at most the time the kernel may cache a
 * name (-o cache_timeout), and every entry is dropped by a rename or a
 * folder removal the daemon serves. Within that time a file or folder
 * renamed on the backing store by someone else is still reached through
 * its descriptor, the one the kernel knows, as the kernel itself keeps
 * reaching it by its cached name; no name is looked up to reach it. An
 * open is the exception: it goes through a file's entry only once the
 * file's name in its kept folder is seen to hold it still
 * (file_open_in_kept_folder), as an open by name would find. With
 * cache_timeout=0 nothing is kept. At most NODE_CACHE_MAX descriptors per
 * cache (the daemon has one for folders, one for other nodes).
 */
#pragma once

#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "inode.h"

#define NODE_CACHE_MAX 64

typedef struct NodeCache NodeCache;
typedef struct NodeCacheEntry NodeCacheEntry;

/* A node descriptor in use: a cached one (@entry set, released with
 * node_ref_release) or one of its own (closed then). @fd is -errno when
 * there is none. */
typedef struct {
        int fd;
        NodeCache *cache;
        NodeCacheEntry *entry;
} NodeRef;

/* Entries serve for @ttl_seconds; 0 keeps none. */
NodeCache *node_cache_new(double ttl_seconds);
/* Closes every descriptor; no reference may be held. NULL is a no-op. */
void node_cache_free(NodeCache *cache);

/* The cached descriptor of node @nodeid, if it is the backing file @id
 * and fresh; otherwise a NodeRef with fd -1. */
NodeRef node_cache_get(NodeCache *cache, fuse_ino_t nodeid, InodeBackingId id);

/* @fd, a checked O_PATH descriptor of node @nodeid (backing @id),
 * taken over: kept for the next requests when the cache keeps anything,
 * and returned as a reference either way. */
NodeRef node_cache_add(NodeCache *cache, fuse_ino_t nodeid, InodeBackingId id, int fd);

/* Ends the use of @ref (its descriptor is closed, now or once the cache
 * lets it go) and leaves fd -1 behind. */
void node_ref_release(NodeRef *ref);
#define autorelease_node __attribute__((cleanup(node_ref_release)))

/* The descriptor of node @nodeid, taken out of the cache for the caller
 * to keep (a file whose name is about to go): only when the entry is the
 * backing file @id and no request uses it, fresh or not, as the
 * descriptor is that file whatever its name does. -1 otherwise, the entry
 * left as it was. */
int node_cache_take(NodeCache *cache, fuse_ino_t nodeid, InodeBackingId id);

/* Drops the entry of node @nodeid, if any (a file whose name went). */
void node_cache_forget(NodeCache *cache, fuse_ino_t nodeid);

/* Drops every entry: a node may have another path now. */
void node_cache_drop_all(NodeCache *cache);
