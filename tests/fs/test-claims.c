/* test-claims.c - the claim path on its own, without a mount: which opens
 * claim what, who waits and who is refused with which errno, the check
 * after the backing open, the hand-over of a lock file's hold, and
 * interrupts. The callers are real processes (forked children, named with
 * PR_SET_NAME where the errno depends on the program), because claims
 * identify them through /proc as the daemon does.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "claims.h"
#include "lockfiles.h"
#include "sample-postoffice.h"
#include "process-name.h"

static char *t_dir;
static Backing t_backing = {.root_fd = -1};
static Mailbags t_mailbags;
static pid_t t_children[8];
static int t_n_children;

static void setup(void)
{
        t_dir = g_dir_make_tmp("mailbagfs-claims-XXXXXX", NULL);
        cr_assert_not_null(t_dir);
        /* PO: a postoffice with its INQUEUE3 mailbag and CONTROL.GLB. */
        g_autofree char *po = g_build_filename(t_dir, "PO", NULL);
        harness_make_postoffice(po);
        cr_assert_eq(backing_open(&t_backing, t_dir), 0);
        MailbagsConfig config = {.lock_timeout_ms = 10000, .exclusive_timeout_ms = 2000};
        g_autoptr(GError) error = NULL;
        cr_assert_eq(mailbags_init(&t_mailbags, &t_backing, &config, &error), 0);
        cr_assert_eq(mailbags_start(&t_mailbags, NULL, NULL), 1, "one postoffice in the tree");
}

static void teardown(void)
{
        mailbags_clear(&t_mailbags);
        backing_close(&t_backing);
        for (int i = 0; i < t_n_children; i++) {
                kill(t_children[i], SIGKILL);
                waitpid(t_children[i], NULL, 0);
        }
        t_n_children = 0;
        g_autofree char *command = g_strdup_printf("rm -rf '%s'", t_dir);
        cr_expect_eq(system(command), 0);
        g_clear_pointer(&t_dir, g_free);
}

TestSuite(claims, .init = setup, .fini = teardown, .timeout = 60);

/* A process that does nothing but exist, as the caller of a claim. */
static pid_t caller_named(const char *program)
{
        int ready[2];
        cr_assert_eq(pipe(ready), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                harness_name_process(program);
                close(ready[0]);
                if (write(ready[1], "R", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        char byte;
        cr_assert_eq(read(ready[0], &byte, 1), 1);
        close(ready[0]);
        t_children[t_n_children++] = pid;
        return pid;
}

typedef struct {
        atomic_int calls;
        int result;
        Claim *claim;
} Ready;

static void on_ready(void *opaque, Claim *claim, int result)
{
        Ready *ready = opaque;
        ready->result = result;
        ready->claim = claim;
        atomic_fetch_add(&ready->calls, 1);
}

static int wait_ready(Ready *ready)
{
        for (int i = 0; i < 2000 && atomic_load(&ready->calls) == 0; i++)
                g_usleep(5000);
        cr_assert_eq(atomic_load(&ready->calls), 1, "ready was called %d times",
                     atomic_load(&ready->calls));
        return ready->result;
}

static int begin(const char *relpath, int flags, bool creating, pid_t caller, Ready *ready,
                 Claim **claim, uint64_t *wait_id)
{
        ClaimRequest request = {
                .relpath = relpath,
                .flags = flags,
                .creating = creating,
                .thread_id = caller,
                .ready = on_ready,
                .opaque = ready,
        };
        return claim_begin(&t_mailbags, &request, claim, wait_id);
}

Test(claims, plain_files_claim_nothing)
{
        Ready ready = {0};
        Claim *claim = (Claim *)1;
        uint64_t wait_id;
        cr_expect_eq(begin("PO/MAI/MA1/00000001.MAI", O_RDWR, false, getpid(), &ready, &claim,
                           &wait_id), 0);
        cr_expect_null(claim);
        cr_expect_eq(begin("ELSEWHERE/KEY/INQUEUE3.KEY", O_RDONLY, false, getpid(), &ready,
                           &claim, &wait_id), 0);
        cr_expect_null(claim, "a folder that is no postoffice is plain files");
        cr_expect_eq(claim_confirm(&t_mailbags, &claim, 0, -1), 0);
}

Test(claims, a_held_queue_queues_others_and_refuses_who_may_not_wait)
{
        pid_t external = caller_named("EXTERNAL");
        pid_t gateway = caller_named("GATEWAY");
        pid_t smbd = caller_named("smbd");
        Ready r_external = {0}, r_gateway = {0}, r_smbd = {0};
        Claim *held, *waiting, *refused;
        uint64_t wait_id;

        cr_assert_eq(begin("PO/P1/INQUEUE3.0LK", O_RDWR, false, external, &r_external, &held,
                           &wait_id), 0);
        cr_assert_not_null(held);
        cr_assert_eq(claim_confirm(&t_mailbags, &held, 0, -1), 0);
        cr_assert_not_null(held, "an open-handle lease stays with the handle");

        cr_expect_eq(begin("PO/KEY/INQUEUE3.KEY", O_RDONLY, false, smbd, &r_smbd, &refused,
                           &wait_id), -ETXTBSY, "smbd never waits and hears ETXTBSY (its SHARING_VIOLATION)");
        cr_expect_eq(begin("PO/P1/INQUEUE3.0LK", O_RDWR | O_CREAT, true, gateway, &r_gateway,
                           &refused, &wait_id), -EBUSY, "a create never waits");

        cr_assert_eq(begin("PO/KEY/INQUEUE3.KEY", O_RDONLY, false, gateway, &r_gateway, &waiting,
                           &wait_id), CLAIM_PENDING);
        cr_expect_eq(atomic_load(&r_gateway.calls), 0);
        claim_release(&t_mailbags, held);
        cr_assert_eq(wait_ready(&r_gateway), 0, "the gateway gets the queue once External lets go");
        Claim *granted = r_gateway.claim;
        cr_assert_eq(claim_confirm(&t_mailbags, &granted, 0, -1), 0);
        claim_release(&t_mailbags, granted);
}

Test(claims, an_interrupted_wait_ends_with_eintr)
{
        pid_t external = caller_named("EXTERNAL");
        pid_t gateway = caller_named("GATEWAY");
        Ready r_external = {0}, r_gateway = {0};
        Claim *held, *waiting;
        uint64_t wait_id;
        cr_assert_eq(begin("PO/P1/INQUEUE3.0LK", O_RDWR, false, external, &r_external, &held,
                           &wait_id), 0);
        cr_assert_eq(begin("PO/MBG/INQUEUE3.MBG", O_RDONLY, false, gateway, &r_gateway, &waiting,
                           &wait_id), CLAIM_PENDING);
        claim_interrupt(&t_mailbags, wait_id);
        cr_expect_eq(wait_ready(&r_gateway), -EINTR);
        cr_expect_null(r_gateway.claim);
        claim_interrupt(&t_mailbags, wait_id); /* settled: nothing happens */
        cr_expect_eq(atomic_load(&r_gateway.calls), 1);
        claim_release(&t_mailbags, held);
}

/* A wait that holds nothing ended: told like a claim's readiness. */
static void on_waited(void *opaque, int result)
{
        Ready *ready = opaque;
        ready->result = result;
        atomic_fetch_add(&ready->calls, 1);
}

/* DOSBox's create is answered before its lease comes; a file it creates
 * meanwhile is made at once, but its reads and writes wait in the same
 * line until that lease comes. */
Test(claims, a_deferred_programs_new_files_wait_for_its_lease)
{
        pid_t gateway = caller_named("GATEWAY");
        pid_t dosbox = caller_named("dosbox");
        Ready r_gateway = {0}, r_dosbox = {0};
        Claim *held, *deferred;
        uint64_t wait_id;
        cr_assert_eq(begin("PO/KEY/INQUEUE3.KEY", O_RDONLY, false, gateway, &r_gateway, &held,
                           &wait_id), 0);
        cr_assert_eq(claim_confirm(&t_mailbags, &held, 0, -1), 0);
        cr_expect_eq(claim_deferred_process(&t_mailbags, dosbox), 0, "nothing is deferred yet");

        cr_assert_eq(begin("PO/P1/INQUEUE3.0LK", O_RDWR | O_CREAT, true, dosbox, &r_dosbox,
                           &deferred, &wait_id), 0, "DOSBox's create is answered at once");
        cr_assert_not_null(deferred);
        cr_assert_eq(claim_confirm(&t_mailbags, &deferred, 0, -1), 0);
        cr_assert_not_null(deferred, "its handle keeps the deferred claim");
        cr_expect_eq(claim_deferred_process(&t_mailbags, dosbox), dosbox);
        cr_expect_eq(claim_deferred_process(&t_mailbags, gateway), 0);

        Ready write = {0}, read = {0};
        uint64_t write_id, read_id;
        cr_assert_eq(claim_await_deferred(&t_mailbags, dosbox, "write", "PO/MARK.TXT", on_waited,
                                          &write, &write_id),
                     CLAIM_PENDING);
        cr_assert_eq(claim_await_deferred(&t_mailbags, dosbox, "read", "PO/MARK.TXT", on_waited,
                                          &read, &read_id),
                     CLAIM_PENDING);
        cr_expect_eq(claim_await_deferred(&t_mailbags, gateway, "write", "PO/OTHER.TXT",
                                          on_waited, &read, &wait_id),
                     0, "a program with nothing deferred never waits");
        g_usleep(100 * 1000);
        cr_expect_eq(atomic_load(&write.calls), 0, "the write waited no longer than the hold");
        claim_interrupt(&t_mailbags, read_id);
        cr_expect_eq(wait_ready(&read), -EINTR, "a read given up hears EINTR");

        claim_release(&t_mailbags, held);
        cr_expect_eq(wait_ready(&write), 0, "the write goes on once the lease came");
        cr_expect_eq(claim_deferred_process(&t_mailbags, dosbox), 0);
        cr_expect_eq(claim_await_deferred(&t_mailbags, dosbox, "write", "PO/MARK.TXT", on_waited,
                                          &write, &write_id),
                     0, "nothing is held back once the lease came");
        claim_release(&t_mailbags, deferred);
        cr_expect_eq(atomic_load(&write.calls), 1);
}

static bool present_yes(void *opaque)
{
        (void)opaque;
        return true;
}

static bool present_no(void *opaque)
{
        (void)opaque;
        return false;
}

Test(claims, the_registry_records_a_lock_file_only_while_it_is_there)
{
        g_autoptr(LockFiles) files = lockfiles_new();
        LockFile replaced = {0};
        cr_expect_eq(lockfiles_add(files, "P1/INQUEUE3.001", "INQUEUE3", 1, getpid(), 0, NULL,
                                   &replaced, present_no, NULL),
                     -ENOENT);
        cr_expect_not(lockfiles_known(files, "P1/INQUEUE3.001"));
        cr_expect_eq(lockfiles_add(files, "P1/INQUEUE3.001", "INQUEUE3", 2, getpid(), 0, NULL,
                                   &replaced, present_yes, NULL),
                     0);
        cr_expect(lockfiles_known(files, "P1/INQUEUE3.001"));
        cr_expect_eq(lockfiles_add(files, "P1/INQUEUE3.001", "INQUEUE3", 3, getpid(), 0, NULL,
                                   &replaced, NULL, NULL),
                     1);
        cr_expect_eq(replaced.ref, 2, "the entry it replaced, whose hold is to end");
}

/* A -V20 program under DOSBox creates its lock file while the queue is
 * held (answered at once, its hold deferred); when its turn comes, the
 * hold goes to the registry if the file is still there, and ends at once
 * if the program removed it meanwhile. */
static void deferred_lock_file(bool removed_before_turn)
{
        pid_t gateway = caller_named("GATEWAY");
        pid_t dosbox = caller_named("dosbox");
        pid_t other = caller_named("GATEWAY");
        Ready r_gateway = {0}, r_dosbox = {0}, r_other = {0};
        Claim *held, *deferred, *next;
        uint64_t wait_id;
        cr_assert_eq(begin("PO/KEY/INQUEUE3.KEY", O_RDONLY, false, gateway, &r_gateway, &held,
                           &wait_id), 0);
        cr_assert_eq(claim_confirm(&t_mailbags, &held, 0, -1), 0);
        cr_assert_eq(begin("PO/P1/INQUEUE3.001", O_WRONLY | O_CREAT | O_EXCL, true, dosbox,
                           &r_dosbox, &deferred, &wait_id), 0);
        g_autofree char *lock = g_build_filename(t_dir, "PO", "P1", "INQUEUE3.001", NULL);
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        cr_assert_geq(fd, 0);
        cr_assert_eq(claim_confirm(&t_mailbags, &deferred, 0, fd), 0);
        close(fd);
        if (removed_before_turn) {
                cr_assert_eq(unlink(lock), 0);
                mailbags_name_removed(&t_mailbags, "PO/P1/INQUEUE3.001");
        }
        claim_release(&t_mailbags, held);
        /* The deferred hold's turn came on this thread, in the release. */
        int r = begin("PO/KEY/INQUEUE3.KEY", O_RDONLY, false, other, &r_other, &next, &wait_id);
        if (removed_before_turn) {
                cr_expect_eq(r, 0, "a hold whose lock file went before its turn must end");
                claim_release(&t_mailbags, next);
                return;
        }
        cr_expect_eq(r, CLAIM_PENDING, "the lock file holds the queue");
        cr_assert_eq(unlink(lock), 0);
        mailbags_name_removed(&t_mailbags, "PO/P1/INQUEUE3.001");
        cr_expect_eq(wait_ready(&r_other), 0, "its removal ends the hold");
        claim_release(&t_mailbags, r_other.claim);
}

Test(claims, a_deferred_lock_file_still_there_holds_until_removed)
{
        deferred_lock_file(false);
}

Test(claims, a_deferred_lock_file_gone_before_its_turn_holds_nothing)
{
        deferred_lock_file(true);
}

Test(claims, a_v20_lock_file_holds_until_unlinked)
{
        pid_t v20 = caller_named("EXTERNAL");
        pid_t gateway = caller_named("GATEWAY");
        Ready ready = {0};
        Claim *claim, *other;
        uint64_t wait_id;
        cr_assert_eq(begin("PO/P1/INQUEUE3.007", O_WRONLY | O_CREAT | O_EXCL, true, v20, &ready,
                           &claim, &wait_id), 0);
        cr_assert_not_null(claim);
        cr_assert_eq(claim_confirm(&t_mailbags, &claim, 0, -1), 0);
        cr_expect_null(claim, "the lock file's registry holds it now, not the handle");
        cr_expect_eq(begin("PO/P1/INQUEUE3.0LK", O_RDWR | O_CREAT, true, gateway, &ready, &other,
                           &wait_id), -EBUSY);
        mailbags_name_removed(&t_mailbags, "PO/P1/INQUEUE3.007");
        cr_expect_eq(begin("PO/P1/INQUEUE3.0LK", O_RDWR | O_CREAT, true, gateway, &ready, &other,
                           &wait_id), 0);
        claim_release(&t_mailbags, other);
}

Test(claims, a_hold_broken_before_the_open_is_confirmed_refuses_it)
{
        pid_t external = caller_named("EXTERNAL");
        Ready ready = {0};
        Claim *claim;
        uint64_t wait_id;
        cr_assert_eq(begin("PO/P1/INQUEUE3.0LK", O_RDWR, false, external, &ready, &claim,
                           &wait_id), 0);
        Postoffice *po = postoffices_peek(t_mailbags.postoffices, "PO");
        cr_assert_not_null(po);
        cr_assert_eq(lease_break(po->leases, LEASE_SESSION, "INQUEUE3"), 0);
        cr_expect_eq(claim_confirm(&t_mailbags, &claim, 0, -1), -EBUSY);
        cr_expect_null(claim, "a refused confirm frees the claim");
}

Test(claims, a_closing_hold_is_awaited_even_by_smbd)
{
        pid_t external = caller_named("EXTERNAL");
        pid_t smbd = caller_named("smbd");
        Ready r_external = {0}, r_smbd = {0};
        Claim *held, *waiting;
        uint64_t wait_id;
        cr_assert_eq(begin("PO/P1/INQUEUE3.0LK", O_RDWR, false, external, &r_external, &held,
                           &wait_id), 0);
        claim_closing(&t_mailbags, held, smbd); /* not the opener: no effect */
        cr_expect_eq(begin("PO/KEY/INQUEUE3.KEY", O_RDONLY, false, smbd, &r_smbd, &waiting,
                           &wait_id), -ETXTBSY);
        claim_closing(&t_mailbags, held, external);
        cr_assert_eq(begin("PO/KEY/INQUEUE3.KEY", O_RDONLY, false, smbd, &r_smbd, &waiting,
                           &wait_id), CLAIM_PENDING, "the release is on its way: smbd waits for it");
        claim_release(&t_mailbags, held);
        cr_expect_eq(wait_ready(&r_smbd), 0);
        claim_release(&t_mailbags, r_smbd.claim);
}

Test(claims, exclusive_files_are_one_process_at_a_time)
{
        pid_t first = caller_named("CONNECTOR");
        pid_t second = caller_named("ADMIN");
        Ready r_first = {0}, r_second = {0};
        Claim *one, *two;
        uint64_t wait_id;
        cr_assert_eq(begin("PO/GLB/CONTROL.GLB", O_RDWR, false, first, &r_first, &one, &wait_id),
                     0);
        cr_assert_eq(begin("PO/glb/control.glb", O_RDONLY, false, second, &r_second, &two,
                           &wait_id), CLAIM_PENDING, "names match in any case");
        claim_release(&t_mailbags, one);
        cr_expect_eq(wait_ready(&r_second), 0);
        claim_release(&t_mailbags, r_second.claim);
}
