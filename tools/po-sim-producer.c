/* po-sim-producer.c - the MS Mail Connector adding mail to INQUEUE3.
 *
 * For each message: take a number from GLB/CONTROL.GLB (opened DENY_ALL
 * for the read-increment-write, Q99204, Q87388), write MAI/MA?/<n>.MAI and
 * P1/<n>.P1, then add the record inside the queue's KEY section (the
 * delivery order of POSTOFFICE.md: record into the .MBG, then the .KEY).
 * When the KEY section cannot be had within ctx->key_attempts tries, or the
 * queue is full, the message fails with [008] (Q237695): it is not queued,
 * its files are removed and the sender gets the report; po-sim counts it
 * as a contention failure, neither queued nor lost.
 *
 * Real traffic arrives at its own pace; po-sim's producers would outrun
 * the consumers and fill the queue to its 4096-record limit. So a producer
 * holds back (without using up its retry budget) while the queue is above
 * three quarters of the limit: a stand-in for the arrival rate, not a
 * documented behaviour.
 */
#include "po-sim.h"

#include "glb.h"
#include "mailbag.h"
#include "po-error.h"
#include "po-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRODUCER_HIGH_WATER (PO_MAILBAG_MAX_RECORDS * 3 / 4)
/* Retries back off 2, 4, ... up to 64 ms: the budget of the default ten
 * attempts is about a third of a second. */
#define PRODUCER_BACKOFF_DOUBLINGS 6

static void producer_error(SimWorker *worker, const GError *error)
{
        fprintf(stderr, "po-sim: %s %u: %s\n", sim_role_name(worker->role), worker->index,
                error->message);
}

/* CONTROL.GLB is one process at a time; a refusal is retried, never a
 * failure of the message (nothing documents a give-up here). */
static int take_message_number(SimWorker *worker, uint32_t *number)
{
        const SimContext *ctx = worker->ctx;
        for (;;) {
                SimStandIn stand_in = SIM_STAND_IN_INIT;
                int r = sim_stand_in_try(ctx, "GLB-CONTROL", &stand_in);
                po_auto_fd fd = r < 0 ? r : sim_open(ctx, "GLB/CONTROL.GLB", O_RDWR);
                if (fd == -EBUSY) {
                        sim_stand_in_release(&stand_in);
                        if (!sim_backoff(worker, 1000))
                                return -ETIMEDOUT;
                        continue;
                }
                if (fd < 0)
                        return fd;
                g_autoptr(GError) error = NULL;
                bool ok = po_glb_control_take_message_number_fd(fd, "GLB/CONTROL.GLB", number,
                                                                &error);
                sim_stand_in_release(&stand_in);
                if (!ok) {
                        producer_error(worker, error);
                        return -EIO;
                }
                return 0;
        }
}

int sim_write_opaque(SimWorker *worker, const char *relpath, gsize min, gsize spread)
{
        uint8_t buf[2048];
        gsize len = MIN(sizeof buf, min + (gsize)g_rand_int_range(worker->rand, 0, (gint32)spread));
        for (gsize i = 0; i < len; i++)
                buf[i] = (uint8_t)g_rand_int(worker->rand);
        po_auto_fd fd = sim_open(worker->ctx, relpath, O_WRONLY | O_CREAT | O_EXCL);
        if (fd < 0)
                return fd;
        g_autoptr(GError) error = NULL;
        if (!po_file_pwrite_all(fd, buf, len, 0, relpath, &error)) {
                producer_error(worker, error);
                return -EIO;
        }
        return 0;
}

static _Atomic uint8_t *outcome_of(SimWorker *worker, uint32_t number)
{
        SimShared *shared = worker->ctx->shared;
        /* Nobody else allocates numbers during a run, so the numbers are
         * within the range the parent sized the table for (with room for
         * numbers taken by workers that died). */
        if (number < shared->first_number || number - shared->first_number >= shared->capacity) {
                fprintf(stderr, "po-sim: %s %u: CONTROL.GLB gave %08X, outside the "
                        "%u numbers from %08X this run expects\n", sim_role_name(worker->role),
                        worker->index, number, shared->capacity, shared->first_number);
                return NULL;
        }
        return &shared->outcome[number - shared->first_number];
}

int sim_take_message(SimWorker *worker, uint32_t *number, _Atomic uint8_t **outcome)
{
        int r = take_message_number(worker, number);
        if (r < 0)
                return r;
        *outcome = outcome_of(worker, *number);
        return *outcome ? 0 : -ERANGE;
}

/* Live records of the queue, read on the open files of the KEY section. */
static int producer_queue_live(int key_fd, int mbg_fd, unsigned *live)
{
        uint8_t key[PO_MAILBAG_KEY_SIZE];
        struct stat st;
        if (fstat(mbg_fd, &st) < 0)
                return -errno;
        if (pread(key_fd, key, sizeof key, 0) != (ssize_t)sizeof key)
                return -EIO;
        PoMailbagStats stats;
        po_mailbag_key_stats(key, (unsigned)(st.st_size / PO_MAILBAG_RECORD_SIZE), &stats);
        *live = stats.live;
        return 0;
}

/* 0 queued, -EBUSY (KEY section not had within the budget) or -ENOSPC
 * (queue full): both [008]; other negative errnos are errors. */
static int producer_queue_append(SimWorker *worker, const uint8_t *record)
{
        const SimContext *ctx = worker->ctx;
        unsigned attempts = 0;
        while (attempts < ctx->key_attempts) {
                SimStandIn stand_in = SIM_STAND_IN_INIT;
                po_auto_fd key_fd = sim_key_section_try(ctx, SIM_QUEUE, &stand_in);
                if (key_fd == -EBUSY) {
                        attempts++;
                        unsigned wait_us = 1000u << MIN(attempts, PRODUCER_BACKOFF_DOUBLINGS);
                        if (attempts < ctx->key_attempts && !sim_backoff(worker, wait_us))
                                return -ETIMEDOUT;
                        continue;
                }
                if (key_fd < 0)
                        return key_fd;
                po_auto_fd mbg_fd = sim_open(ctx, ctx->queue_mbg, O_RDWR);
                if (mbg_fd < 0) {
                        sim_stand_in_release(&stand_in);
                        return mbg_fd;
                }
                unsigned live = 0;
                int r = producer_queue_live(key_fd, mbg_fd, &live);
                if (r == 0 && live >= PRODUCER_HIGH_WATER) {
                        sim_stand_in_release(&stand_in);
                        if (!sim_backoff(worker, 2000))
                                return -ETIMEDOUT;
                        continue;
                }
                g_autoptr(GError) error = NULL;
                int slot = r < 0 ? r : po_mailbag_append_fds(key_fd, mbg_fd, record,
                                                             ctx->queue_key, ctx->queue_mbg,
                                                             &error);
                sim_stand_in_release(&stand_in);
                if (slot >= 0)
                        return 0;
                if (g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_FULL))
                        return -ENOSPC;
                if (error)
                        producer_error(worker, error);
                return -EIO;
        }
        return -EBUSY;
}

static int producer_one(SimWorker *worker)
{
        const SimContext *ctx = worker->ctx;
        SimShared *shared = ctx->shared;
        uint32_t number;
        _Atomic uint8_t *outcome;
        int r = sim_take_message(worker, &number, &outcome);
        if (r < 0)
                return r;
        atomic_fetch_add(&shared->produced_attempts, 1);

        g_autofree char *mai = po_profile_message_path(ctx->profile, number);
        g_autofree char *p1 = po_profile_envelope_path(ctx->profile, number);
        if ((r = sim_write_opaque(worker, mai, 128, 1024)) < 0 ||
            (r = sim_write_opaque(worker, p1, 64, 192)) < 0)
                return r;

        PoRecord fields = { .minute = 30, .hour = 9, .day = 1, .month = 6, .year = 1998,
                            .has_message_number = true, .message_number = number };
        g_strlcpy(fields.sender, "CONNECTOR", sizeof fields.sender);
        g_snprintf(fields.subject, sizeof fields.subject, "po-sim message %u", number);
        uint8_t record[PO_MAILBAG_RECORD_SIZE] = { 0 };
        po_record_encode(record, &fields);

        /* Should this process die before the answer (a dead mount), the
         * tally looks for the record rather than trusting either outcome. */
        atomic_store(outcome, SIM_OUTCOME_APPENDING);
        r = producer_queue_append(worker, record);
        if (r == 0) {
                atomic_store(outcome, SIM_OUTCOME_QUEUED);
                atomic_fetch_add(&shared->produced_done[worker->index], 1);
                return 0;
        }
        if (r != -EBUSY && r != -ENOSPC)
                return r;
        atomic_fetch_add(&shared->contention_failures, 1);
        atomic_fetch_add(&shared->refused, 1);
        atomic_store(outcome, SIM_OUTCOME_REFUSED);
        /* No system call between the outcome and this count: a process cut
         * off by a dead mount fails inside one, so a restarted producer
         * never makes a finished message again. */
        atomic_fetch_add(&shared->produced_done[worker->index], 1);
        sim_unlink(ctx, p1);
        sim_unlink(ctx, mai);
        return 0;
}

int sim_producer_run(SimWorker *worker)
{
        for (unsigned i = 0; i < worker->messages; i++) {
                int r = producer_one(worker);
                if (r < 0)
                        return r;
        }
        return 0;
}
