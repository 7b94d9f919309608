/* po-sim-consumer.c - the three kinds of program that empty INQUEUE3.
 *
 * Each consumer works in sessions: take the queue its own way, read the
 * queue's KEY and MBG once, handle up to ctx->batch live records in slot
 * order, give the queue back, pause briefly so others get turns. A record
 * is handled in the documented order (Q136379): read the P1 envelope and
 * the MAI, write the record into the recipient's mailbag (sim_deliver,
 * po-sim-deliver.c: a mailbag that stays contended through its retries
 * returns the message with [008]), remove the queue entry, delete the P1,
 * then the MAI.
 *
 * How each program takes the queue (see po-sim.c for the sources):
 * - External 3.x creates P1/INQUEUE3.0LK and holds it open read/write
 *   DENY_ALL for the session, having checked for older-style lock files
 *   (Q103960, Q119642); it deletes the lock file at the end.
 * - External -V20 creates P1/INQUEUE3.0NN, looks for anybody else's 0NN
 *   and, if it finds one, deletes its own and tries later (the Mail 2.0
 *   method, Q131422, Q119642). It does not know the 3.x .0LK name
 *   (inferred: the method predates it).
 * - The gateway opens KEY/INQUEUE3.KEY READ with DENY_READ and never looks
 *   at lock files (Q103960).
 *
 * A consumer trusts its lock: it works from the records it read at the
 * start of the session and frees the slot it took a record from without
 * looking again (inferred; nothing documents a re-check). When two programs
 * hold "their" locks at once, that is how mail gets duplicated, reported
 * [021] although delivered, or, when the slot was freed and reused
 * meanwhile, dropped from the queue (the P1 debris of Q237695).
 */
#include "po-sim.h"

#include "mailbag.h"
#include "po-error.h"
#include "po-file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A Mail 2.x lock file of the queue: "INQUEUE3.0NN", any case. */
static bool consumer_is_v20_lock(const char *name)
{
        size_t base = strlen(SIM_QUEUE);
        return strlen(name) == base + 4 && g_ascii_strncasecmp(name, SIM_QUEUE, base) == 0 &&
               name[base] == '.' && name[base + 1] == '0' && g_ascii_isdigit(name[base + 2]) &&
               g_ascii_isdigit(name[base + 3]);
}

/* 1 when P1 holds a queue lock file of the Mail 2.x kind other than
 * @own (may be NULL), 0 when not, or a negative errno. */
static int consumer_find_v20_lock(const SimContext *ctx, const char *own)
{
        int fd = openat(ctx->root_fd, po_profile_lock_folder(ctx->profile),
                        O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *dir = fdopendir(fd);
        if (!dir) {
                int saved = errno;
                close(fd);
                return -saved;
        }
        int found = 0;
        for (struct dirent *entry; (entry = readdir(dir)) != NULL;) {
                if (consumer_is_v20_lock(entry->d_name) &&
                    !(own && g_ascii_strcasecmp(entry->d_name, own) == 0)) {
                        found = 1;
                        break;
                }
        }
        closedir(dir);
        return found;
}

typedef struct {
        SimStandIn stand_in;
        int lock_fd;        /* External: the .0LK; gateway: the queue's KEY */
        char lock_path[32]; /* External and -V20: the lock file */
} ConsumerSession;

static void consumer_session_end(SimWorker *worker, ConsumerSession *session)
{
        const SimContext *ctx = worker->ctx;
        /* External and -V20 delete their lock file at the end (Q119642); a
         * -V20 program's session ends exactly there. */
        if (session->lock_path[0])
                sim_unlink(ctx, session->lock_path);
        if (session->lock_fd >= 0)
                close(session->lock_fd);
        session->lock_fd = -1;
        session->lock_path[0] = '\0';
        sim_stand_in_release(&session->stand_in);
}

/* A lock that vanished under us (another External deleted the .0LK between
 * our lookup and our open) is a busy queue, not an error. */
static int consumer_busy_if_gone(int r)
{
        return r == -ENOENT || r == -ESTALE ? -EBUSY : r;
}

static int consumer_begin_external(SimWorker *worker, ConsumerSession *session)
{
        const SimContext *ctx = worker->ctx;
        int r = sim_stand_in_try(ctx, "session-0LK-" SIM_QUEUE, &session->stand_in);
        if (r < 0)
                return r;
        int fd = sim_open(ctx, ctx->queue_session_lock, O_RDWR | O_CREAT);
        if (fd < 0) {
                sim_stand_in_release(&session->stand_in);
                return consumer_busy_if_gone(fd);
        }
        session->lock_fd = fd;
        g_strlcpy(session->lock_path, ctx->queue_session_lock, sizeof session->lock_path);
        /* 3.0.4 and later check for older-style locks (Q119642). */
        r = consumer_find_v20_lock(ctx, NULL);
        if (r != 0) {
                consumer_session_end(worker, session);
                return r > 0 ? -EBUSY : r;
        }
        return 0;
}

static char *consumer_v20_own_lock(const SimWorker *worker)
{
        char extension[4];
        g_snprintf(extension, sizeof extension, "0%02u", worker->index);
        return po_profile_session_lock_path(worker->ctx->profile, SIM_QUEUE, extension);
}

/* A -V20 program that starts and finds its own process number's lock file
 * (left by its predecessor, killed or cut off by a dead mount) removes it
 * before anything else: nobody else uses that number, and the file would
 * otherwise hold the queue for ever (after a daemon restart the daemon
 * holds it for an unknown holder until it is removed, README "Lock files
 * found on the share"). Inferred: Q119642 documents the numbers, not what
 * a program does with its own leftover; reusing it would do the same. */
static int consumer_v20_remove_own_leftover(SimWorker *worker)
{
        g_autofree char *own_path = consumer_v20_own_lock(worker);
        int r = sim_unlink(worker->ctx, own_path);
        return r == -ENOENT ? 0 : r;
}

static int consumer_begin_v20(SimWorker *worker, ConsumerSession *session)
{
        const SimContext *ctx = worker->ctx;
        char own[16];
        g_snprintf(own, sizeof own, "%s.0%02u", SIM_QUEUE, worker->index);
        g_autofree char *own_path = consumer_v20_own_lock(worker);
        g_strlcpy(session->lock_path, own_path, sizeof session->lock_path);
        int fd = sim_open(ctx, session->lock_path, O_WRONLY | O_CREAT | O_EXCL);
        if (fd < 0) {
                session->lock_path[0] = '\0';
                /* Only this process uses its number; a file left by an
                 * earlier run is stale debris. */
                if (fd == -EEXIST) {
                        sim_unlink(ctx, own_path);
                        return -EBUSY;
                }
                return fd;
        }
        close(fd); /* the file, not the handle, is the lock */
        int r = consumer_find_v20_lock(ctx, own);
        if (r != 0) {
                consumer_session_end(worker, session);
                return r > 0 ? -EBUSY : r;
        }
        return 0;
}

static int consumer_begin_gateway(SimWorker *worker, ConsumerSession *session)
{
        const SimContext *ctx = worker->ctx;
        int r = sim_stand_in_try(ctx, "session-queue-read-" SIM_QUEUE, &session->stand_in);
        if (r < 0)
                return r;
        int fd = sim_open(ctx, ctx->queue_key, O_RDONLY);
        if (fd < 0) {
                sim_stand_in_release(&session->stand_in);
                return fd;
        }
        session->lock_fd = fd;
        return 0;
}

static int consumer_session_begin(SimWorker *worker, ConsumerSession *session)
{
        switch (worker->role) {
        case SIM_ROLE_EXTERNAL: return consumer_begin_external(worker, session);
        case SIM_ROLE_V20: return consumer_begin_v20(worker, session);
        case SIM_ROLE_GATEWAY: return consumer_begin_gateway(worker, session);
        default: return -EINVAL;
        }
}

static void consumer_note_missing(SimWorker *worker, uint32_t number, bool *noted)
{
        if (*noted)
                return;
        *noted = true;
        SimShared *shared = worker->ctx->shared;
        atomic_fetch_add(&shared->missing_routing, 1);
        unsigned i = atomic_fetch_add(&shared->missing_count, 1);
        if (i < SIM_MISSING_MAX)
                shared->missing[i] = number;
}

/* The in-hand slot (po-sim.h): set before a delivery, cleared once the
 * queue record is gone. */
static void consumer_set_in_hand(SimWorker *worker, uint32_t number)
{
        atomic_store(&worker->ctx->shared->in_hand[worker->role][worker->index],
                     SIM_IN_HAND_SET | number);
}

static void consumer_clear_in_hand(SimWorker *worker)
{
        atomic_store(&worker->ctx->shared->in_hand[worker->role][worker->index], 0);
}

/* Reads a whole opaque file (P1 or MAI) as the MTA does before delivery. */
static int consumer_read_opaque(const SimContext *ctx, const char *relpath)
{
        po_auto_fd fd = sim_open(ctx, relpath, O_RDONLY);
        if (fd < 0)
                return fd;
        uint8_t buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
                ;
        return n < 0 ? -errno : 0;
}

/* Retries the KEY section until it is ours or the deadline passes. */
static int consumer_key_section(SimWorker *worker, const char *mailbag, SimStandIn *stand_in)
{
        for (;;) {
                int fd = sim_key_section_try(worker->ctx, mailbag, stand_in);
                if (fd != -EBUSY)
                        return fd;
                if (!sim_backoff(worker, 1000))
                        return -ETIMEDOUT;
        }
}

/* Removes the queue entry in @slot. A slot somebody else already freed is
 * not an error: the program does not know, it just wrote the bit. */
static int consumer_free_slot(SimWorker *worker, int queue_mbg_fd, unsigned slot)
{
        SimStandIn stand_in = SIM_STAND_IN_INIT;
        po_auto_fd key_fd = consumer_key_section(worker, SIM_QUEUE, &stand_in);
        if (key_fd < 0)
                return key_fd;
        g_autoptr(GError) error = NULL;
        bool ok = po_mailbag_delete_fds(key_fd, queue_mbg_fd, slot, worker->ctx->queue_key,
                                        worker->ctx->queue_mbg, &error);
        sim_stand_in_release(&stand_in);
        if (ok || g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_RANGE))
                return 0;
        fprintf(stderr, "po-sim: %s %u: %s\n", sim_role_name(worker->role), worker->index,
                error->message);
        return -EIO;
}

/* A message returned to the sender with [008] (counted by sim_deliver). */
static void consumer_note_returned(SimWorker *worker, uint32_t number)
{
        SimShared *shared = worker->ctx->shared;
        unsigned i = atomic_fetch_add(&shared->returned_count, 1);
        if (i < SIM_RETURNED_MAX)
                shared->returned[i] = number;
}

static int consumer_handle(SimWorker *worker, int queue_mbg_fd, unsigned slot,
                           const uint8_t *record)
{
        const SimContext *ctx = worker->ctx;
        PoRecord fields;
        po_record_decode(record, &fields);
        g_autofree char *p1 = po_profile_envelope_path(ctx->profile, fields.message_number);
        g_autofree char *mai = po_profile_message_path(ctx->profile, fields.message_number);
        bool noted = false;

        int r = fields.has_message_number ? consumer_read_opaque(ctx, p1) : -ENOENT;
        if (r == 0)
                r = consumer_read_opaque(ctx, mai);
        if (r == -ENOENT) {
                /* [021]: no routing file, the message goes back to the
                 * sender; its queue entry and what is left of it go. */
                consumer_note_missing(worker, fields.message_number, &noted);
                r = consumer_free_slot(worker, queue_mbg_fd, slot);
                if (r == 0 && fields.has_message_number) {
                        sim_unlink(ctx, p1);
                        sim_unlink(ctx, mai);
                }
                return r;
        }
        if (r < 0)
                return r;

        const char *recipient = g_ptr_array_index(
                ctx->recipients, fields.message_number % ctx->recipients->len);
        consumer_set_in_hand(worker, fields.message_number);
        /* [008] when the mailbag is full or stayed contended: the message
         * goes back to the sender and its queue entry is removed. */
        r = sim_deliver(worker, recipient, record);
        if (r == -ENOSPC || r == -EBUSY) {
                consumer_note_returned(worker, fields.message_number);
                r = 0;
        } else if (r == 0) {
                atomic_fetch_add(&ctx->shared->delivered_claims, 1);
        }
        if (r == 0)
                r = consumer_free_slot(worker, queue_mbg_fd, slot);
        if (r < 0)
                return r;
        consumer_clear_in_hand(worker);
        /* Delivered, but the P1 is gone: the first cause in Q103960. */
        if (sim_unlink(ctx, p1) == -ENOENT)
                consumer_note_missing(worker, fields.message_number, &noted);
        sim_unlink(ctx, mai);
        return 0;
}

/* One session's work: reads the queue, handles up to ctx->batch records.
 * *@live gets the live records seen at the start. */
static int consumer_session_work(SimWorker *worker, ConsumerSession *session, unsigned *live)
{
        const SimContext *ctx = worker->ctx;
        /* The gateway's lock is the queue's KEY itself; the others open it
         * read-only inside their session. */
        po_auto_fd own_key_fd = -1;
        int key_fd = session->lock_fd;
        if (worker->role != SIM_ROLE_GATEWAY) {
                own_key_fd = sim_open(ctx, ctx->queue_key, O_RDONLY);
                if (own_key_fd < 0)
                        return own_key_fd;
                key_fd = own_key_fd;
        }
        po_auto_fd mbg_fd = sim_open(ctx, ctx->queue_mbg, O_RDONLY);
        if (mbg_fd < 0)
                return mbg_fd;
        g_autoptr(GError) error = NULL;
        g_autoptr(PoMailbag) queue = po_mailbag_load_fds(key_fd, mbg_fd, ctx->queue_key,
                                                         ctx->queue_mbg, &error);
        if (!queue) {
                fprintf(stderr, "po-sim: %s %u: %s\n", sim_role_name(worker->role),
                        worker->index, error->message);
                return -EIO;
        }
        PoMailbagStats stats;
        po_mailbag_stats(queue, &stats);
        *live = stats.live;
        unsigned handled = 0;
        for (int slot = po_mailbag_next_live(queue, -1); slot >= 0 && handled < ctx->batch;
             slot = po_mailbag_next_live(queue, slot), handled++) {
                int r = consumer_handle(worker, mbg_fd, slot, po_mailbag_record(queue, slot));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Whether a consumer of another protocol is inside a queue session now;
 * one the supervisor is killing no longer is (po-sim.h). */
static bool consumer_other_protocol_inside(const SimWorker *worker)
{
        SimShared *shared = worker->ctx->shared;
        for (int role = SIM_ROLE_EXTERNAL; role <= SIM_ROLE_GATEWAY; role++) {
                if (role == (int)worker->role)
                        continue;
                for (int i = 1; i <= SIM_MAX_INDEX; i++) {
                        pid_t pid = atomic_load(&shared->inside[role][i]);
                        if (pid != 0 && pid != atomic_load(&shared->killing[role][i]))
                                return true;
                }
        }
        return false;
}

/* Inside the session: from once the session is ours (the .0LK or KEY
 * open, the -V20 lock file made and nobody else's found, the stand-in
 * taken) to just before it is given back. An entry is an overlap when a
 * consumer of another protocol is inside already, and is counted here
 * only, once: both sessions' holds are then on the daemon's books at the
 * same time (they begin at the open and end after the close or unlink),
 * so an enforcing daemon never lets it happen and an observing one has
 * counted the later of the two opens. Two consumers entering at the same
 * moment may both miss each other: too few, never too many. */
static void consumer_enter(SimWorker *worker)
{
        SimShared *shared = worker->ctx->shared;
        if (consumer_other_protocol_inside(worker))
                atomic_fetch_add(&shared->cross_protocol_overlaps, 1);
        atomic_store(&shared->inside[worker->role][worker->index], getpid());
}

static void consumer_leave(SimWorker *worker)
{
        atomic_store(&worker->ctx->shared->inside[worker->role][worker->index], 0);
}

int sim_consumer_run(SimWorker *worker)
{
        const SimContext *ctx = worker->ctx;
        if (worker->role == SIM_ROLE_V20) {
                int r = consumer_v20_remove_own_leftover(worker);
                if (r < 0)
                        return r;
        }
        for (;;) {
                /* Read before the session: whatever the producers queued
                 * before finishing is then visible inside it. */
                bool producers_done = sim_producers_done(ctx);
                ConsumerSession session = { .stand_in = SIM_STAND_IN_INIT, .lock_fd = -1 };
                int r = consumer_session_begin(worker, &session);
                if (r == -EBUSY) {
                        if (!sim_backoff(worker, ctx->poll_us))
                                return -ETIMEDOUT;
                        continue;
                }
                if (r < 0)
                        return r;
                consumer_enter(worker);
                unsigned live = 0;
                r = consumer_session_work(worker, &session, &live);
                consumer_leave(worker);
                consumer_session_end(worker, &session);
                if (r < 0)
                        return r;
                if (live == 0 && producers_done)
                        return 0;
                /* Pause after a session so that every consumer gets turns;
                 * an empty queue is polled at the program's interval. */
                if (!sim_backoff(worker, live == 0 ? ctx->poll_us : 500))
                        return -ETIMEDOUT;
        }
}
