/* po-sim-supervise.c - the parent's side of a run: starts one process per
 * simulated program, waits for all of them under one deadline, and, when
 * asked, plays the hard life of a mail server around them.
 *
 * - --kill-consumers-every MS: about every MS milliseconds (uniformly 0.5
 *   to 1.5 times) a random running consumer gets SIGKILL at whatever it is
 *   doing, and is started again at once with the same role and number, as
 *   an operator or a crashed PC restarting the program would.
 * - --restart-workers: a worker that fails on the share (SIM_EXIT_IO: the
 *   ENOTCONN of a dead mount, EIO, ESTALE, or a postoffice not reachable
 *   through mailbagfs at start) is started again after a short pause,
 *   rather than failing the run, as its supervisor would. A producer or
 *   deliverer started again handles only the messages its predecessors did
 *   not finish. Deliverers, like producers, are never killed.
 *
 * Whenever a consumer dies (either way) its in-hand slot (po-sim.h) says
 * which message it had between delivery and the removal of the queue
 * record; the tally allows exactly those duplicates. Any other failure of
 * a worker, the deadline or SIGINT/SIGTERM kills every worker and ends the
 * run as failed.
 */
#include "po-sim.h"

#include "status-attr.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIM_PROGRESS_INTERVAL_US (G_USEC_PER_SEC / 2)
/* A killed program is started again at once; one cut off from the share
 * after a pause, so that a dead mount's window is not spun through. */
#define SIM_KILL_RESTART_US (10 * 1000)
#define SIM_IO_RESTART_US (200 * 1000)
/* More I/O failures than this for one worker is a broken share, not a
 * restart: the run fails. */
#define SIM_IO_RESTARTS_MAX 500

bool sim_error_is_io(int error)
{
        return error == -ENOTCONN || error == -ECONNABORTED || error == -EIO ||
               error == -ESTALE;
}

typedef enum {
        SIM_SLOT_RUNNING,
        SIM_SLOT_WAITING, /* to be started again at restart_at */
        SIM_SLOT_DONE,
} SimSlotState;

/* One simulated program, across the processes that have played it. */
typedef struct {
        SimRole role;
        unsigned index;     /* 1-based within its role */
        unsigned quota;     /* producers: messages in all */
        pid_t pid;          /* 0 when no process runs */
        SimSlotState state;
        bool killed;        /* the running process was sent SIGKILL by us */
        unsigned generation;
        unsigned io_restarts;
        gint64 restart_at;
} SimSlot;

typedef struct {
        const SimContext *ctx;
        const SimPlan *plan;
        SimOutcome *outcome;
        GArray *slots;       /* SimSlot */
        unsigned live;       /* slots not done */
        unsigned producers_live;
        int done_write_fd;
        bool failed;
        GRand *rand;
        pid_t parent;
} SimRun;

/* Opens the worker's postoffice afresh: the parent's descriptor may be on
 * a mount that died since. Through mailbagfs the folder must still be one
 * the daemon protects (a mountpoint whose mount was just removed shows the
 * empty directory below it): otherwise the share is not there yet. */
static int sim_worker_open_root(SimContext *local)
{
        int fd = open(local->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (!local->raw) {
                char proc[64];
                g_snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
                if (!status_attr_is_protected(proc)) {
                        close(fd);
                        return -ENOTCONN;
                }
        }
        local->root_fd = fd;
        return 0;
}

/* The child side of a fork: becomes one program and never returns. */
static G_NORETURN void sim_worker_main(const SimContext *ctx, const SimRun *run,
                                       const SimSlot *slot, unsigned messages)
{
        /* A worker must not outlive a parent that died or gave up. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != run->parent)
                _exit(1);
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        if (run->done_write_fd >= 0)
                close(run->done_write_fd);
        /* The name shows in the daemon's lock table and in mailbag-stat. */
        char name[16];
        g_snprintf(name, sizeof name, "po-sim-%.3s-%u", sim_role_name(slot->role), slot->index);
        prctl(PR_SET_NAME, name);

        SimContext local = *ctx;
        if (ctx->also && slot->index % 2 == 0) {
                local.root = ctx->also;
                local.raw = ctx->also_raw;
                local.observed = ctx->also_observed;
        }
        close(ctx->root_fd);
        int r = sim_worker_open_root(&local);
        if (r < 0) {
                fprintf(stderr, "po-sim: %s %u: %s: %s\n", sim_role_name(slot->role),
                        slot->index, local.root, g_strerror(-r));
                _exit(sim_error_is_io(r) ? SIM_EXIT_IO : 1);
        }
        SimWorker worker = {
                .ctx = &local,
                .role = slot->role,
                .index = slot->index,
                .messages = messages,
                .rand = g_rand_new_with_seed((guint32)(run->plan->seed * 131 + slot->role * 17 +
                                                       slot->index + slot->generation * 7919)),
        };
        r = slot->role == SIM_ROLE_PRODUCER ? sim_producer_run(&worker)
            : slot->role == SIM_ROLE_DELIVERER ? sim_deliverer_run(&worker)
            : sim_consumer_run(&worker);
        if (r < 0)
                fprintf(stderr, "po-sim: %s %u: %s\n", sim_role_name(slot->role), slot->index,
                        r == -ETIMEDOUT ? "deadline reached" : g_strerror(-r));
        g_rand_free(worker.rand);
        fflush(stderr);
        _exit(r == 0 ? 0 : sim_error_is_io(r) ? SIM_EXIT_IO : 1);
}

static void sim_kill_all(SimRun *run)
{
        for (guint i = 0; i < run->slots->len; i++) {
                SimSlot *slot = &g_array_index(run->slots, SimSlot, i);
                if (slot->pid > 0)
                        kill(slot->pid, SIGKILL);
        }
}

static void sim_slot_done(SimRun *run, SimSlot *slot)
{
        if (slot->state == SIM_SLOT_DONE)
                return;
        slot->state = SIM_SLOT_DONE;
        run->live--;
        if (slot->role == SIM_ROLE_PRODUCER && --run->producers_live == 0 &&
            run->done_write_fd >= 0) {
                close(run->done_write_fd); /* consumers see EOF */
                run->done_write_fd = -1;
        }
}

static void sim_fail(SimRun *run, const char *why)
{
        if (run->failed)
                return;
        run->failed = true;
        run->outcome->failure = why;
        sim_kill_all(run);
        for (guint i = 0; i < run->slots->len; i++) {
                SimSlot *slot = &g_array_index(run->slots, SimSlot, i);
                if (slot->state == SIM_SLOT_WAITING)
                        sim_slot_done(run, slot);
        }
}

static bool sim_start(SimRun *run, SimSlot *slot)
{
        unsigned messages = 0;
        if (slot->role == SIM_ROLE_PRODUCER || slot->role == SIM_ROLE_DELIVERER) {
                const SimShared *shared = run->ctx->shared;
                unsigned done = atomic_load(slot->role == SIM_ROLE_PRODUCER
                                            ? &shared->produced_done[slot->index]
                                            : &shared->direct_done[slot->index]);
                messages = slot->quota > done ? slot->quota - done : 0;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
                sim_worker_main(run->ctx, run, slot, messages);
        if (pid < 0) {
                fprintf(stderr, "po-sim: fork: %s\n", g_strerror(errno));
                sim_slot_done(run, slot);
                sim_fail(run, "fork failed");
                return false;
        }
        slot->pid = pid;
        slot->state = SIM_SLOT_RUNNING;
        slot->killed = false;
        return true;
}

/* What a dead consumer had in hand explains one more copy of it. */
static void sim_note_in_hand(SimRun *run, SimSlot *slot, bool killed)
{
        /* A consumer killed inside its session is no longer inside; the
         * next process in the slot has a pid of its own. */
        if (slot->role <= SIM_ROLE_GATEWAY) {
                atomic_store(&run->ctx->shared->inside[slot->role][slot->index], 0);
                atomic_store(&run->ctx->shared->killing[slot->role][slot->index], 0);
        }
        uint64_t hand = atomic_exchange(&run->ctx->shared->in_hand[slot->role][slot->index], 0);
        if (!(hand & SIM_IN_HAND_SET))
                return;
        gpointer number = GUINT_TO_POINTER((uint32_t)hand);
        GHashTable *deaths = run->outcome->in_hand_at_death;
        g_hash_table_insert(deaths, number,
                            GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(deaths,
                                                                                  number)) + 1));
        if (killed)
                run->outcome->kills_in_hand++;
        else
                run->outcome->io_in_hand++;
}

static void sim_reap(SimRun *run)
{
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (guint i = 0; i < run->slots->len; i++) {
                        SimSlot *slot = &g_array_index(run->slots, SimSlot, i);
                        if (slot->pid != pid)
                                continue;
                        slot->pid = 0;
                        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                        bool io = WIFEXITED(status) && WEXITSTATUS(status) == SIM_EXIT_IO;
                        bool killed = slot->killed && WIFSIGNALED(status) &&
                                      WTERMSIG(status) == SIGKILL;
                        if (!clean)
                                sim_note_in_hand(run, slot, killed);
                        gint64 now = g_get_monotonic_time();
                        if (clean || run->failed) {
                                sim_slot_done(run, slot);
                        } else if (killed) {
                                slot->state = SIM_SLOT_WAITING;
                                slot->restart_at = now + SIM_KILL_RESTART_US;
                        } else if (io && run->plan->restart_workers &&
                                   slot->io_restarts < SIM_IO_RESTARTS_MAX) {
                                slot->io_restarts++;
                                run->outcome->io_exits++;
                                slot->state = SIM_SLOT_WAITING;
                                slot->restart_at = now + SIM_IO_RESTART_US;
                        } else {
                                sim_slot_done(run, slot);
                                sim_fail(run, "a worker failed");
                        }
                }
        }
}

static void sim_restart_due(SimRun *run, gint64 now, gint64 *next)
{
        for (guint i = 0; i < run->slots->len && !run->failed; i++) {
                SimSlot *slot = &g_array_index(run->slots, SimSlot, i);
                if (slot->state != SIM_SLOT_WAITING)
                        continue;
                if (slot->restart_at > now) {
                        *next = MIN(*next, slot->restart_at);
                        continue;
                }
                slot->generation++;
                run->outcome->restarts++;
                sim_start(run, slot);
        }
}

/* SIGKILL for one running consumer, chosen at random. */
static void sim_kill_one(SimRun *run)
{
        g_autoptr(GArray) candidates = g_array_new(FALSE, FALSE, sizeof(guint));
        for (guint i = 0; i < run->slots->len; i++) {
                SimSlot *slot = &g_array_index(run->slots, SimSlot, i);
                if (slot->role != SIM_ROLE_PRODUCER && slot->role != SIM_ROLE_DELIVERER &&
                    slot->pid > 0 && !slot->killed &&
                    slot->state == SIM_SLOT_RUNNING)
                        g_array_append_val(candidates, i);
        }
        if (candidates->len == 0)
                return;
        guint pick = g_array_index(candidates, guint,
                                   g_rand_int_range(run->rand, 0, (gint32)candidates->len));
        SimSlot *slot = &g_array_index(run->slots, SimSlot, pick);
        /* Not inside from now on (po-sim.h): its holds end when the kernel
         * closes its files, before it is reaped here. */
        atomic_store(&run->ctx->shared->killing[slot->role][slot->index], slot->pid);
        if (kill(slot->pid, SIGKILL) == 0) {
                slot->killed = true;
                run->outcome->kills++;
        }
}

static gint64 sim_next_kill(SimRun *run, gint64 now)
{
        gint64 every = (gint64)run->plan->kill_every_ms * 1000;
        return now + every / 2 + g_rand_int_range(run->rand, 0, (gint32)MAX(every, 1));
}

static void sim_progress(const SimRun *run, bool final)
{
        const SimShared *shared = run->ctx->shared;
        fprintf(stderr, "\rpo-sim: produced %u/%u, delivered %u, [021] %u, [008] %u, "
                "killed %u, restarted %u%s",
                atomic_load(&shared->produced_attempts), run->plan->messages,
                atomic_load(&shared->delivered_claims), atomic_load(&shared->missing_routing),
                atomic_load(&shared->contention_failures), run->outcome->kills,
                run->outcome->restarts, final ? "\n" : "   ");
}

/* Waits for every program under the deadline, killing and restarting as
 * planned; SIGINT and SIGTERM end the run (the children are killed,
 * nothing is left behind). */
static void sim_wait_all(SimRun *run)
{
        const SimContext *ctx = run->ctx;
        bool progress = isatty(STDERR_FILENO);
        gint64 next_progress = g_get_monotonic_time();
        gint64 next_kill = run->plan->kill_every_ms ? sim_next_kill(run, next_progress)
                                                    : G_MAXINT64;
        sigset_t wait_set;
        sigemptyset(&wait_set);
        sigaddset(&wait_set, SIGCHLD);
        sigaddset(&wait_set, SIGINT);
        sigaddset(&wait_set, SIGTERM);
        while (run->live > 0) {
                sim_reap(run);
                gint64 now = g_get_monotonic_time();
                gint64 wake = ctx->deadline_us;
                sim_restart_due(run, now, &wake);
                if (run->live == 0)
                        break;
                if (now >= ctx->deadline_us)
                        sim_fail(run, "the deadline was reached (see --timeout)");
                if (!run->failed && now >= next_kill) {
                        sim_kill_one(run);
                        next_kill = sim_next_kill(run, now);
                }
                if (progress && now >= next_progress) {
                        sim_progress(run, false);
                        next_progress = now + SIM_PROGRESS_INTERVAL_US;
                }
                wake = MIN(wake, next_kill);
                if (progress)
                        wake = MIN(wake, next_progress);
                gint64 wait_us = CLAMP(wake - now, 1000, G_USEC_PER_SEC);
                struct timespec timeout = { .tv_sec = wait_us / G_USEC_PER_SEC,
                                            .tv_nsec = (wait_us % G_USEC_PER_SEC) * 1000 };
                int sig = sigtimedwait(&wait_set, NULL, &timeout);
                if (sig == SIGINT || sig == SIGTERM)
                        sim_fail(run, "interrupted");
        }
        if (progress)
                sim_progress(run, true);
}

void sim_run(const SimContext *ctx, const SimPlan *plan, SimOutcome *outcome)
{
        memset(outcome, 0, sizeof *outcome);
        outcome->in_hand_at_death = g_hash_table_new(g_direct_hash, g_direct_equal);
        /* Children are reaped and signals taken synchronously in
         * sim_wait_all(); blocked before the first fork so none is missed. */
        sigset_t blocked, saved_mask;
        sigemptyset(&blocked);
        sigaddset(&blocked, SIGCHLD);
        sigaddset(&blocked, SIGINT);
        sigaddset(&blocked, SIGTERM);
        sigprocmask(SIG_BLOCK, &blocked, &saved_mask);

        SimRun run = {
                .ctx = ctx,
                .plan = plan,
                .outcome = outcome,
                .slots = g_array_new(FALSE, TRUE, sizeof(SimSlot)),
                .done_write_fd = plan->done_pipe[1],
                .rand = g_rand_new_with_seed((guint32)(plan->seed * 7 + 3)),
                .parent = getpid(),
        };
        unsigned producers = plan->counts[SIM_ROLE_PRODUCER];
        unsigned deliverers = plan->counts[SIM_ROLE_DELIVERER];
        for (int role = 0; role < SIM_ROLE_COUNT; role++) {
                for (unsigned i = 1; i <= plan->counts[role]; i++) {
                        SimSlot slot = { .role = role, .index = i };
                        if (role == SIM_ROLE_PRODUCER)
                                slot.quota = plan->messages / producers +
                                             (i <= plan->messages % producers);
                        if (role == SIM_ROLE_DELIVERER)
                                slot.quota = plan->direct_messages / deliverers +
                                             (i <= plan->direct_messages % deliverers);
                        g_array_append_val(run.slots, slot);
                        run.live++;
                        if (role == SIM_ROLE_PRODUCER)
                                run.producers_live++;
                }
        }
        gint64 start = g_get_monotonic_time();
        for (guint i = 0; i < run.slots->len && !run.failed; i++)
                sim_start(&run, &g_array_index(run.slots, SimSlot, i));
        for (guint i = 0; i < run.slots->len; i++) {
                SimSlot *slot = &g_array_index(run.slots, SimSlot, i);
                if (slot->pid == 0 && slot->state != SIM_SLOT_DONE)
                        sim_slot_done(&run, slot); /* never started: the fork failed */
        }
        if (run.producers_live == 0 && run.done_write_fd >= 0) {
                close(run.done_write_fd);
                run.done_write_fd = -1;
        }
        sim_wait_all(&run);
        outcome->seconds = (g_get_monotonic_time() - start) / (double)G_USEC_PER_SEC;
        if (run.done_write_fd >= 0)
                close(run.done_write_fd);
        sigprocmask(SIG_SETMASK, &saved_mask, NULL);
        g_array_unref(run.slots);
        g_rand_free(run.rand);
}

void sim_outcome_clear(SimOutcome *outcome)
{
        g_clear_pointer(&outcome->in_hand_at_death, g_hash_table_unref);
}
