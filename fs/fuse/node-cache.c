/* node-cache.c - recently used node descriptors, counted and bounded. */
#include "node-cache.h"

#include <errno.h>
#include <glib.h>
#include <unistd.h>

struct NodeCacheEntry {
        int fd;
        fuse_ino_t nodeid;
        InodeBackingId id;
        gint64 expires_us;
        int refs;     /* NodeCache.mutex; the table's own counts as one */
        bool dropped; /* NodeCache.mutex: out of the table */
};

struct NodeCache {
        GMutex mutex;
        GHashTable *entries; /* fuse_ino_t* (the entry's nodeid) -> entry; mutex */
        gint64 ttl_us;       /* immutable */
};

NodeCache *node_cache_new(double ttl_seconds)
{
        NodeCache *cache = g_new0(NodeCache, 1);
        g_mutex_init(&cache->mutex);
        cache->entries = g_hash_table_new(g_int64_hash, g_int64_equal);
        cache->ttl_us = ttl_seconds > 0 ? (gint64)(ttl_seconds * G_USEC_PER_SEC) : 0;
        return cache;
}

static void node_entry_unref_locked(NodeCacheEntry *entry)
{
        if (--entry->refs > 0)
                return;
        close(entry->fd);
        g_free(entry);
}

static void node_entry_drop_locked(NodeCache *cache, NodeCacheEntry *entry)
{
        if (entry->dropped)
                return;
        entry->dropped = true;
        g_hash_table_remove(cache->entries, &entry->nodeid);
        node_entry_unref_locked(entry);
}

static void node_cache_drop_all_locked(NodeCache *cache)
{
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, cache->entries);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                NodeCacheEntry *entry = value;
                entry->dropped = true;
                g_hash_table_iter_remove(&iter);
                node_entry_unref_locked(entry);
        }
}

void node_cache_free(NodeCache *cache)
{
        if (!cache)
                return;
        g_mutex_lock(&cache->mutex);
        node_cache_drop_all_locked(cache);
        g_mutex_unlock(&cache->mutex);
        g_hash_table_unref(cache->entries);
        g_mutex_clear(&cache->mutex);
        g_free(cache);
}

NodeRef node_cache_get(NodeCache *cache, fuse_ino_t nodeid, InodeBackingId id)
{
        NodeRef ref = {.fd = -1, .cache = cache};
        if (cache->ttl_us == 0)
                return ref;
        g_mutex_lock(&cache->mutex);
        NodeCacheEntry *entry = g_hash_table_lookup(cache->entries, &nodeid);
        if (entry && (entry->id.dev != id.dev || entry->id.ino != id.ino ||
                      g_get_monotonic_time() >= entry->expires_us)) {
                node_entry_drop_locked(cache, entry);
                entry = NULL;
        }
        if (entry) {
                entry->refs++;
                ref.fd = entry->fd;
                ref.entry = entry;
        }
        g_mutex_unlock(&cache->mutex);
        return ref;
}

NodeRef node_cache_add(NodeCache *cache, fuse_ino_t nodeid, InodeBackingId id, int fd)
{
        NodeRef ref = {.fd = fd, .cache = cache};
        if (cache->ttl_us == 0 || fd < 0)
                return ref;
        NodeCacheEntry *entry = g_new0(NodeCacheEntry, 1);
        entry->fd = fd;
        entry->nodeid = nodeid;
        entry->id = id;
        entry->expires_us = g_get_monotonic_time() + cache->ttl_us;
        entry->refs = 2; /* the table's and the caller's */

        g_mutex_lock(&cache->mutex);
        NodeCacheEntry *old = g_hash_table_lookup(cache->entries, &nodeid);
        if (old)
                node_entry_drop_locked(cache, old);
        if (g_hash_table_size(cache->entries) >= NODE_CACHE_MAX) {
                /* Full: the entry closest to expiry makes room. */
                GHashTableIter iter;
                gpointer value;
                NodeCacheEntry *oldest = NULL;
                g_hash_table_iter_init(&iter, cache->entries);
                while (g_hash_table_iter_next(&iter, NULL, &value))
                        if (!oldest || ((NodeCacheEntry *)value)->expires_us < oldest->expires_us)
                                oldest = value;
                node_entry_drop_locked(cache, oldest);
        }
        g_hash_table_insert(cache->entries, &entry->nodeid, entry);
        g_mutex_unlock(&cache->mutex);
        ref.entry = entry;
        return ref;
}

void node_ref_release(NodeRef *ref)
{
        int saved_errno = errno;
        if (ref->entry) {
                g_mutex_lock(&ref->cache->mutex);
                node_entry_unref_locked(ref->entry);
                g_mutex_unlock(&ref->cache->mutex);
        } else if (ref->fd >= 0) {
                close(ref->fd);
        }
        ref->entry = NULL;
        ref->fd = -1;
        errno = saved_errno;
}

int node_cache_take(NodeCache *cache, fuse_ino_t nodeid, InodeBackingId id)
{
        int fd = -1;
        g_mutex_lock(&cache->mutex);
        NodeCacheEntry *entry = g_hash_table_lookup(cache->entries, &nodeid);
        if (entry && entry->refs == 1 && entry->id.dev == id.dev && entry->id.ino == id.ino) {
                /* Unused (refs 1: the table's), so freed here; its
                 * descriptor is the caller's now. */
                fd = entry->fd;
                g_hash_table_remove(cache->entries, &entry->nodeid);
                g_free(entry);
        }
        g_mutex_unlock(&cache->mutex);
        return fd;
}

void node_cache_forget(NodeCache *cache, fuse_ino_t nodeid)
{
        g_mutex_lock(&cache->mutex);
        NodeCacheEntry *entry = g_hash_table_lookup(cache->entries, &nodeid);
        if (entry)
                node_entry_drop_locked(cache, entry);
        g_mutex_unlock(&cache->mutex);
}

void node_cache_drop_all(NodeCache *cache)
{
        g_mutex_lock(&cache->mutex);
        node_cache_drop_all_locked(cache);
        g_mutex_unlock(&cache->mutex);
}
