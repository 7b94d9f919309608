/* kernel-cache.h - telling the kernel to forget names the daemon removed.
 *
 * The kernel caches names for entry_timeout. When the daemon itself removes
 * a file (a dead holder's -V20 lock file), a -V20 program that looks for
 * lock files (access, stat) would still see it and believe its queue
 * locked, so the entry is invalidated. (FUSE looks a name up again for an
 * O_EXCL create, so creates were never fooled.) Not on the calling thread: the removal may happen
 * inside a request that holds the folder's lock in the kernel (a CREATE),
 * and the invalidation waits for that lock, so one thread of its own
 * sends them, in order.
 */
#pragma once

#include <fuse_lowlevel.h>
#include <stdint.h>

typedef struct KernelCache KernelCache;

KernelCache *kernel_cache_new(struct fuse_session *session);
/* Sends what is queued, then stops the thread. NULL is a no-op. */
void kernel_cache_free(KernelCache *cache);

/* Queues the invalidation of entry @name of folder node @parent. */
void kernel_cache_forget_name(KernelCache *cache, uint64_t parent, const char *name);

/* Runs on the cache's thread once an invalidation was applied. */
typedef void (*KernelCacheDone)(void *data, uint64_t arg);

/* The same, then @done(@data, @arg). The kernel applies an invalidation
 * under the folder's lock, so @done runs after any request that held
 * that lock when this was queued has finished in the kernel: an UNLINK or
 * RENAME answered just before, whose caller updates the kernel's caches
 * only after reading its reply. Without the thread, @done runs at once. */
void kernel_cache_forget_name_then(KernelCache *cache, uint64_t parent, const char *name,
                                   KernelCacheDone done, void *data, uint64_t arg);
