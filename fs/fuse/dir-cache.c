/* dir-cache.c - recently used folder descriptors, counted and bounded. */
#include "dir-cache.h"

#include <errno.h>
#include <glib.h>
#include <unistd.h>

struct DirCacheEntry {
        int fd;
        fuse_ino_t nodeid;
        InodeBackingId id;
        gint64 expires_us;
        int refs;     /* DirCache.mutex; the table's own counts as one */
        bool dropped; /* DirCache.mutex: out of the table */
};

struct DirCache {
        GMutex mutex;
        GHashTable *entries; /* fuse_ino_t* (the entry's nodeid) -> entry; mutex */
        gint64 ttl_us;       /* immutable */
};

DirCache *dir_cache_new(double ttl_seconds)
{
        DirCache *cache = g_new0(DirCache, 1);
        g_mutex_init(&cache->mutex);
        cache->entries = g_hash_table_new(g_int64_hash, g_int64_equal);
        cache->ttl_us = ttl_seconds > 0 ? (gint64)(ttl_seconds * G_USEC_PER_SEC) : 0;
        return cache;
}

static void dir_entry_unref_locked(DirCacheEntry *entry)
{
        if (--entry->refs > 0)
                return;
        close(entry->fd);
        g_free(entry);
}

static void dir_entry_drop_locked(DirCache *cache, DirCacheEntry *entry)
{
        if (entry->dropped)
                return;
        entry->dropped = true;
        g_hash_table_remove(cache->entries, &entry->nodeid);
        dir_entry_unref_locked(entry);
}

static void dir_cache_drop_all_locked(DirCache *cache)
{
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, cache->entries);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                DirCacheEntry *entry = value;
                entry->dropped = true;
                g_hash_table_iter_remove(&iter);
                dir_entry_unref_locked(entry);
        }
}

void dir_cache_free(DirCache *cache)
{
        if (!cache)
                return;
        g_mutex_lock(&cache->mutex);
        dir_cache_drop_all_locked(cache);
        g_mutex_unlock(&cache->mutex);
        g_hash_table_unref(cache->entries);
        g_mutex_clear(&cache->mutex);
        g_free(cache);
}

DirRef dir_cache_get(DirCache *cache, fuse_ino_t nodeid, InodeBackingId id)
{
        DirRef ref = {.fd = -1, .cache = cache};
        if (cache->ttl_us == 0)
                return ref;
        g_mutex_lock(&cache->mutex);
        DirCacheEntry *entry = g_hash_table_lookup(cache->entries, &nodeid);
        if (entry && (entry->id.dev != id.dev || entry->id.ino != id.ino ||
                      g_get_monotonic_time() >= entry->expires_us)) {
                dir_entry_drop_locked(cache, entry);
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

DirRef dir_cache_add(DirCache *cache, fuse_ino_t nodeid, InodeBackingId id, int fd)
{
        DirRef ref = {.fd = fd, .cache = cache};
        if (cache->ttl_us == 0 || fd < 0)
                return ref;
        DirCacheEntry *entry = g_new0(DirCacheEntry, 1);
        entry->fd = fd;
        entry->nodeid = nodeid;
        entry->id = id;
        entry->expires_us = g_get_monotonic_time() + cache->ttl_us;
        entry->refs = 2; /* the table's and the caller's */

        g_mutex_lock(&cache->mutex);
        DirCacheEntry *old = g_hash_table_lookup(cache->entries, &nodeid);
        if (old)
                dir_entry_drop_locked(cache, old);
        if (g_hash_table_size(cache->entries) >= DIR_CACHE_MAX) {
                /* Full: the entry closest to expiry makes room. */
                GHashTableIter iter;
                gpointer value;
                DirCacheEntry *oldest = NULL;
                g_hash_table_iter_init(&iter, cache->entries);
                while (g_hash_table_iter_next(&iter, NULL, &value))
                        if (!oldest || ((DirCacheEntry *)value)->expires_us < oldest->expires_us)
                                oldest = value;
                dir_entry_drop_locked(cache, oldest);
        }
        g_hash_table_insert(cache->entries, &entry->nodeid, entry);
        g_mutex_unlock(&cache->mutex);
        ref.entry = entry;
        return ref;
}

void dir_ref_release(DirRef *ref)
{
        int saved_errno = errno;
        if (ref->entry) {
                g_mutex_lock(&ref->cache->mutex);
                dir_entry_unref_locked(ref->entry);
                g_mutex_unlock(&ref->cache->mutex);
        } else if (ref->fd >= 0) {
                close(ref->fd);
        }
        ref->entry = NULL;
        ref->fd = -1;
        errno = saved_errno;
}

void dir_cache_drop_all(DirCache *cache)
{
        g_mutex_lock(&cache->mutex);
        dir_cache_drop_all_locked(cache);
        g_mutex_unlock(&cache->mutex);
}
