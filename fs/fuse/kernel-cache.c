/* kernel-cache.c - one thread that sends entry invalidations. */
#include "kernel-cache.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "log.h"

typedef struct {
        uint64_t parent; /* 0: the stop marker */
        char *name;
        KernelCacheDone done; /* may be NULL */
        void *data;
        uint64_t arg;
} KernelCacheForget;

struct KernelCache {
        struct fuse_session *session;
        GAsyncQueue *queue; /* of KernelCacheForget*; thread-safe itself */
        GThread *thread;
};

static gpointer kernel_cache_thread(gpointer data)
{
        KernelCache *cache = data;
        for (;;) {
                KernelCacheForget *forget = g_async_queue_pop(cache->queue);
                if (forget->parent == 0) {
                        g_free(forget);
                        return NULL;
                }
                int r = fuse_lowlevel_notify_inval_entry(cache->session, forget->parent,
                                                         forget->name, strlen(forget->name));
                /* -ENOENT: the kernel had no such entry cached. */
                if (r < 0 && r != -ENOENT)
                        log_debug("cannot invalidate cached name %s: %s", forget->name,
                                  g_strerror(-r));
                if (forget->done)
                        forget->done(forget->data, forget->arg);
                g_free(forget->name);
                g_free(forget);
        }
}

KernelCache *kernel_cache_new(struct fuse_session *session)
{
        KernelCache *cache = g_new0(KernelCache, 1);
        cache->session = session;
        cache->queue = g_async_queue_new();
        g_autoptr(GError) error = NULL;
        cache->thread = g_thread_try_new("kernel-cache", kernel_cache_thread, cache, &error);
        if (!cache->thread)
                log_warning("cannot start the thread that invalidates cached names: %s; a removed "
                            "stale lock file may stay visible for the cache timeout",
                            error->message);
        return cache;
}

void kernel_cache_free(KernelCache *cache)
{
        if (!cache)
                return;
        if (cache->thread) {
                g_async_queue_push(cache->queue, g_new0(KernelCacheForget, 1));
                g_thread_join(cache->thread);
        }
        g_async_queue_unref(cache->queue);
        g_free(cache);
}

void kernel_cache_forget_name_then(KernelCache *cache, uint64_t parent, const char *name,
                                   KernelCacheDone done, void *data, uint64_t arg)
{
        if (!cache || !cache->thread || parent == 0) {
                if (done)
                        done(data, arg);
                return;
        }
        KernelCacheForget *forget = g_new0(KernelCacheForget, 1);
        forget->parent = parent;
        forget->name = g_strdup(name);
        forget->done = done;
        forget->data = data;
        forget->arg = arg;
        g_async_queue_push(cache->queue, forget);
}

void kernel_cache_forget_name(KernelCache *cache, uint64_t parent, const char *name)
{
        kernel_cache_forget_name_then(cache, parent, name, NULL, NULL, 0);
}
