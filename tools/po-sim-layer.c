/* po-sim-layer.c - how the simulated programs reach the postoffice.
 *
 * Every path is opened relative to the postoffice root, the same way on a
 * raw directory and through mailbagfs. The only difference is the
 * stand-in locks: on a raw directory nothing excludes anybody, while a real
 * share is served by one layer (Samba, Wine) that enforces share modes
 * among the programs that use the same protocol. A stand-in is an flock on
 * a file of po-sim's own (never in the postoffice), one per protocol and
 * resource, so two programs of the same protocol exclude each other and two
 * of different protocols do not: every collision left is a cross-protocol
 * one, as in KB Q103960. Through mailbagfs no stand-in is ever taken,
 * unless the mount only observes (-o mode=observe): it then enforces
 * nothing, as a raw share.
 */
#include "po-sim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <unistd.h>

int sim_open(const SimContext *ctx, const char *relpath, int flags)
{
        int fd;
        do
                fd = openat(ctx->root_fd, relpath, flags | O_CLOEXEC, 0644);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0)
                return fd;
        /* mailbagfs answers a refused open with EBUSY after its wait (or at
         * once with EDEADLK, or EAGAIN for callers that may not wait): all
         * are the DOS sharing violation, error 32, and the program tries
         * again later. */
        if (errno == EAGAIN || errno == EDEADLK || errno == EBUSY)
                return -EBUSY;
        return -errno;
}

int sim_unlink(const SimContext *ctx, const char *relpath)
{
        return unlinkat(ctx->root_fd, relpath, 0) < 0 ? -errno : 0;
}

int sim_stand_in_try(const SimContext *ctx, const char *name, SimStandIn *stand_in)
{
        stand_in->fd = -1;
        if (!ctx->raw && !ctx->observed)
                return 0;
        g_autofree char *path = g_build_filename(ctx->stand_in_dir, name, NULL);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int saved = errno;
                close(fd);
                return saved == EWOULDBLOCK ? -EBUSY : -saved;
        }
        stand_in->fd = fd;
        return 0;
}

void sim_stand_in_release(SimStandIn *stand_in)
{
        if (stand_in->fd >= 0)
                close(stand_in->fd); /* closing drops the flock */
        stand_in->fd = -1;
}

bool sim_deadline_passed(const SimContext *ctx)
{
        return g_get_monotonic_time() >= ctx->deadline_us;
}

bool sim_backoff(SimWorker *worker, unsigned max_us)
{
        if (sim_deadline_passed(worker->ctx))
                return false;
        g_usleep(100 + g_rand_int_range(worker->rand, 0, (gint32)MAX(max_us, 1u)));
        return true;
}

bool sim_producers_done(const SimContext *ctx)
{
        struct pollfd pfd = { .fd = ctx->done_fd, .events = POLLIN };
        return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP));
}

int sim_key_section_try(const SimContext *ctx, const char *mailbag, SimStandIn *stand_in)
{
        /* All programs deliver the same way, so a single layer would make
         * every writer of a KEY exclude every other: the stand-in is per
         * mailbag, shared by all roles. */
        g_autofree char *lock_name = g_strdup_printf("key-%s", mailbag);
        int r = sim_stand_in_try(ctx, lock_name, stand_in);
        if (r < 0)
                return r;
        g_autofree char *key = po_profile_key_path(ctx->profile, mailbag);
        int fd = sim_open(ctx, key, O_RDWR);
        if (fd < 0)
                sim_stand_in_release(stand_in);
        return fd;
}
