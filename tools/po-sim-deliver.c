/* po-sim-deliver.c - delivery into a user mailbag, and the programs that
 * deliver mail straight into user mailbags without going through INQUEUE3.
 *
 * A delivery follows the order POSTOFFICE.md gives (inferred there, not
 * documented by a KB article): open the .MBG read/write DENY_WRITE, open
 * the .KEY read/write DENY_ALL, take the first free slot or append
 * (refused at 4096 records, Q163020), write the record, close the .MBG,
 * update the .KEY counters, close the .KEY; a refused open is retried up
 * to SIM_DELIVERY_RETRIES times, and a program that still cannot get the
 * mailbag returns [008] "Failure delivering user mail due to mailbag
 * contention" (Q237695). Which opens are retried, and how long a program
 * pauses between tries, are not documented: po-sim retries the pair of
 * opens after short pauses, all of them together well within another
 * program's delivery (a DOS program's retry loop, scaled down like every
 * wait of po-sim; see delivery_retry_pause).
 *
 * On a raw share the opens are answered by one layer (Samba, Windows),
 * which refuses a conflicting share mode at once: the stand-in locks of
 * po-sim-layer.c, one per mailbag file, shared by every program since all
 * deliver the same way. So two deliverers of the very same kind on one
 * mailbag - the KB's most common cause, two instances of External - are
 * enough for [008]: no second protocol is needed, only the immediate
 * refusal and a bounded number of tries. Through mailbagfs no stand-in is
 * taken: the write open of the .KEY is the daemon's key-write lease, so a
 * second deliverer's open waits in line (up to the daemon's lock_timeout)
 * instead of being refused, and the tries are not used up. The daemon does
 * not guard a write open of the .MBG (the .KEY section orders the writers),
 * so through the mount only the .KEY open can wait.
 *
 * Deliverers (SIM_ROLE_DELIVERER) stand for the programs that bring mail
 * in over their own links and deliver it straight into local user
 * mailbags: External instances serving other postoffices, and the MS Mail
 * Connector's MTA delivering mail from Exchange (Q237695). Each takes a
 * message number from CONTROL.GLB, writes the .MAI and delivers the record
 * to the message's recipient (n mod U, as for queued mail); a message
 * returned with [008] has its .MAI removed and is not in any mailbag.
 */
#include "po-sim.h"

#include "mailbag.h"
#include "po-error.h"
#include "po-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* A DOS program's retry loop pauses briefly between tries, so that its
 * tries are over well within another program's delivery (--delivery-ms):
 * each pause is up to a tenth of the hold divided among the tries. It
 * spins on the clock rather than sleeping, as a DOS program's loop does: a
 * sleep overshoots by tens to hundreds of microseconds depending on the
 * host's timers, and tries that outlast a hold would let a refused
 * deliverer always get the mailbag on a later try, making [008] depend on
 * the host instead of on the contention. False once the run's deadline has
 * passed. */
static bool delivery_retry_pause(SimWorker *worker)
{
        if (sim_deadline_passed(worker->ctx))
                return false;
        unsigned max_us = worker->ctx->delivery_hold_us / (10 * SIM_DELIVERY_RETRIES);
        gint64 until = g_get_monotonic_time() +
                       g_rand_int_range(worker->rand, 0, (gint32)MAX(max_us, 1u));
        while (g_get_monotonic_time() < until)
                ;
        return true;
}

typedef struct {
        SimStandIn mbg_stand_in;
        SimStandIn key_stand_in;
        int mbg_fd;
        int key_fd;
} DeliveryOpen;

#define DELIVERY_OPEN_INIT { SIM_STAND_IN_INIT, SIM_STAND_IN_INIT, -1, -1 }

static void delivery_close_mbg(DeliveryOpen *open)
{
        if (open->mbg_fd >= 0)
                close(open->mbg_fd);
        open->mbg_fd = -1;
        sim_stand_in_release(&open->mbg_stand_in);
}

static void delivery_close(DeliveryOpen *open)
{
        delivery_close_mbg(open);
        if (open->key_fd >= 0)
                close(open->key_fd);
        open->key_fd = -1;
        sim_stand_in_release(&open->key_stand_in);
}

/* One try at both opens: 0 with both held, -EBUSY (a sharing violation on
 * either, nothing held), or another negative errno. */
static int delivery_open_try(const SimContext *ctx, const char *mailbag, DeliveryOpen *open)
{
        /* DENY_WRITE on the .MBG: every other deliverer opens it for
         * writing, so among one layer's clients any two conflict. */
        g_autofree char *mbg_lock = g_strdup_printf("mbg-%s", mailbag);
        int r = sim_stand_in_try(ctx, mbg_lock, &open->mbg_stand_in);
        if (r < 0)
                return r;
        g_autofree char *mbg = po_profile_mbg_path(ctx->profile, mailbag);
        open->mbg_fd = sim_open(ctx, mbg, O_RDWR);
        if (open->mbg_fd < 0) {
                r = open->mbg_fd;
                delivery_close(open);
                return r;
        }
        open->key_fd = sim_key_section_try(ctx, mailbag, &open->key_stand_in);
        if (open->key_fd < 0) {
                r = open->key_fd;
                delivery_close(open);
                return r;
        }
        return 0;
}

static void delivery_note_contention(const SimContext *ctx)
{
        atomic_fetch_add(&ctx->shared->contention_failures, 1);
        atomic_fetch_add(&ctx->shared->contention_delivery, 1);
}

int sim_deliver(SimWorker *worker, const char *mailbag, const uint8_t *record)
{
        const SimContext *ctx = worker->ctx;
        DeliveryOpen open = DELIVERY_OPEN_INIT;
        int r;
        for (unsigned tries = 0;; tries++) {
                r = delivery_open_try(ctx, mailbag, &open);
                if (r != -EBUSY)
                        break;
                atomic_fetch_add(&ctx->shared->delivery_refusals, 1);
                if (tries == SIM_DELIVERY_RETRIES) {
                        delivery_note_contention(ctx);
                        return -EBUSY;
                }
                if (!delivery_retry_pause(worker))
                        return -ETIMEDOUT;
        }
        if (r < 0)
                return r;
        /* A real delivery spends network round trips with both files open
         * (reading the .KEY, seeking, writing); po-sim's local opens take
         * microseconds, so the time is spent here, scaled down like every
         * other wait of po-sim. */
        if (ctx->delivery_hold_us)
                g_usleep(ctx->delivery_hold_us);
        g_autofree char *key_name = po_profile_key_path(ctx->profile, mailbag);
        g_autofree char *mbg_name = po_profile_mbg_path(ctx->profile, mailbag);
        g_autoptr(GError) error = NULL;
        /* Writes the record into its slot, then the .KEY. The .MBG is
         * closed before the .KEY, as in the documented order; nothing
         * else is written to it after the record. */
        int slot = po_mailbag_append_fds(open.key_fd, open.mbg_fd, record, key_name, mbg_name,
                                         &error);
        delivery_close(&open);
        if (slot >= 0)
                return 0;
        if (g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_FULL)) {
                delivery_note_contention(ctx);
                return -ENOSPC;
        }
        fprintf(stderr, "po-sim: %s %u: %s\n", sim_role_name(worker->role), worker->index,
                error->message);
        return -EIO;
}

static int deliverer_one(SimWorker *worker)
{
        const SimContext *ctx = worker->ctx;
        SimShared *shared = ctx->shared;
        uint32_t number;
        _Atomic uint8_t *outcome;
        int r = sim_take_message(worker, &number, &outcome);
        if (r < 0)
                return r;
        g_autofree char *mai = po_profile_message_path(ctx->profile, number);
        if ((r = sim_write_opaque(worker, mai, 128, 1024)) < 0)
                return r;

        PoRecord fields = { .minute = 30, .hour = 9, .day = 1, .month = 6, .year = 1998,
                            .has_message_number = true, .message_number = number };
        g_strlcpy(fields.sender, "INBOUND", sizeof fields.sender);
        g_snprintf(fields.subject, sizeof fields.subject, "po-sim direct %u", number);
        uint8_t record[PO_MAILBAG_RECORD_SIZE] = { 0 };
        po_record_encode(record, &fields);
        const char *recipient = g_ptr_array_index(ctx->recipients,
                                                  number % ctx->recipients->len);

        /* Should this process die in the middle, the tally looks for the
         * record rather than trusting either outcome. */
        atomic_store(outcome, SIM_OUTCOME_DIRECT_PENDING);
        r = sim_deliver(worker, recipient, record);
        if (r == 0) {
                atomic_store(outcome, SIM_OUTCOME_DIRECT);
                atomic_fetch_add(&shared->direct_done[worker->index], 1);
                atomic_fetch_add(&shared->delivered_claims, 1);
                return 0;
        }
        if (r != -EBUSY && r != -ENOSPC)
                return r;
        atomic_store(outcome, SIM_OUTCOME_DIRECT_RETURNED);
        /* No system call between the outcome and this count (see
         * po-sim-producer.c). */
        atomic_fetch_add(&shared->direct_done[worker->index], 1);
        sim_unlink(ctx, mai);
        return 0;
}

int sim_deliverer_run(SimWorker *worker)
{
        for (unsigned i = 0; i < worker->messages; i++) {
                int r = deliverer_one(worker);
                if (r < 0)
                        return r;
        }
        return 0;
}
