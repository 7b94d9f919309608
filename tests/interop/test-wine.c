/* test-wine.c - Win32 programs under wine, in two prefixes (two unrelated
 * programs, like two MTAs on two machines), against the raw directory and
 * through mailbagfs.
 *
 * mbhold.exe opens files with CreateFile share modes and locks ranges
 * with LockFile; each command is answered before the next is sent, so the
 * order of events is the order of the lines below, never a matter of time.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interop-util.h"
#include "mount-fixture.h"
#include "sample-postoffice.h"
#include "wine-fixture.h"

/* External 3.x: the queue's lock file, read/write, DENY_ALL. */
#define EXTERNAL_OPEN "rw - always"
#define EXTERNAL_FILE "P1\\INQUEUE3.0LK"
/* A PROFS-style gateway: the queue's KEY read, sharing only writes. */
#define GATEWAY_OPEN "r w open"
#define GATEWAY_FILE "KEY\\INQUEUE3.KEY"

typedef struct {
        MountHarness harness;
        bool mounted;
        char *root; /* where the programs see the postoffice (Unix path) */
        InteropPeer peers[3];
        int n_peers;
} WineTest;

static WineTest t;

static void wine_test_init(void)
{
        memset(&t, 0, sizeof(t));
        interop_adopt_descendants();
}

static void wine_test_fini(void)
{
        for (int i = 0; i < t.n_peers; i++)
                interop_peer_stop(&t.peers[i]);
        /* Before the unmount: a live wineserver would keep files open. */
        wine_stop_servers();
        mount_harness_teardown(&t.harness);
        interop_end_descendants(5000);
        g_clear_pointer(&t.root, g_free);
        t.n_peers = 0;
}

#define wine_skip(...) interop_skip(wine_test_fini, __VA_ARGS__)

TestSuite(wine, .init = wine_test_init, .fini = wine_test_fini, .timeout = 300);

/* A postoffice in the harness directory, served raw or through the mount. */
static void wine_setup_postoffice(bool through_mount, const char *const *options)
{
        const char *reason = wine_unavailable_reason();
        if (reason)
                wine_skip("wine cannot run here: %s", reason);
        mount_fixture_setup(&t.harness);
        harness_make_postoffice(t.harness.backing);
        if (through_mount) {
                mount_fixture_mount(&t.harness, options);
                t.mounted = true;
                t.root = g_strdup(t.harness.mnt);
        } else {
                t.root = g_strdup(t.harness.backing);
        }
}

static InteropPeer *wine_start(int prefix, const char *name)
{
        cr_assert_lt(t.n_peers, (int)G_N_ELEMENTS(t.peers));
        InteropPeer *peer = &t.peers[t.n_peers];
        g_autofree char *error = NULL;
        int r = wine_peer_start(peer, prefix, name, t.harness.dir, &error);
        if (r < 0)
                wine_skip("wine cannot run a program here: %s", error);
        t.n_peers++;
        return peer;
}

/* "open SLOT MODE PATH" with the file named relative to the postoffice. */
static char *wine_open(InteropPeer *peer, int slot, const char *mode, const char *file)
{
        g_autofree char *unix_path = g_build_filename(t.root, file, NULL);
        g_strdelimit(unix_path, "\\", '/');
        g_autofree char *path = wine_path(unix_path);
        g_autofree char *command = g_strdup_printf("open %d %s %s", slot, mode, path);
        return interop_peer_ask(peer, command);
}

static char *wine_ask(InteropPeer *peer, const char *command)
{
        return interop_peer_ask(peer, command);
}

/* The end of the daemon's log, for a failed expectation: with the mounts'
 * debug level it says which process held or was refused what. */
static char *wine_daemon_log_tail(void)
{
        if (!t.mounted)
                return g_strdup("(raw directory, no daemon)");
        return interop_file_tail(t.harness.log, 1500);
}

/* expect_answer(ASK, EXPECTED[, "why"]): checks one answer, frees it. */
#define expect_answer(answer_expr, expected, ...)                                              \
        do {                                                                                   \
                g_autofree char *answer_ = (answer_expr);                                      \
                bool ok_ = strcmp(answer_, (expected)) == 0;                                   \
                g_autofree char *log_ = ok_ ? NULL : wine_daemon_log_tail();                   \
                cr_expect(ok_, "%s: got '%s', expected '%s'. " __VA_ARGS__ "\ndaemon log:\n%s", \
                          #answer_expr, answer_, (expected), log_ ? log_ : "");                \
        } while (0)

/* Debug level: every grant, refusal and release is logged with its pid. */
static const char *const mount_options[] = {"-oallow_other", "-olog_level=debug", NULL};

/* The problem of KB Q103960, shown: on a plain share nothing stops the
 * gateway while External holds the queue. */
Test(wine, wine_collision_on_raw)
{
        wine_setup_postoffice(false, NULL);
        InteropPeer *external = wine_start(0, "external");
        InteropPeer *gateway = wine_start(1, "gateway");

        expect_answer(wine_open(external, 0, EXTERNAL_OPEN, EXTERNAL_FILE), "OK", "External's lock file");
        expect_answer(wine_open(gateway, 0, GATEWAY_OPEN, GATEWAY_FILE), "OK",
                      "the gateway got the queue at the same time: the collision");
}

Test(wine, wine_sessions_exclude_through_mount)
{
        wine_setup_postoffice(true, mount_options);
        InteropPeer *external = wine_start(0, "external");
        InteropPeer *gateway = wine_start(1, "gateway");

        expect_answer(wine_open(external, 0, EXTERNAL_OPEN, EXTERNAL_FILE), "OK", "External's session");
        expect_answer(wine_open(gateway, 0, GATEWAY_OPEN, GATEWAY_FILE), "ERROR 32",
                      "the gateway must get ERROR_SHARING_VIOLATION while External holds the queue");
        expect_answer(wine_ask(external, "close 0"), "OK");
        expect_answer(wine_open(gateway, 0, GATEWAY_OPEN, GATEWAY_FILE), "OK",
                      "the gateway's session once External has ended its own");

        /* And the other way round. */
        expect_answer(wine_open(external, 0, EXTERNAL_OPEN, EXTERNAL_FILE), "ERROR 32",
                      "External must get ERROR_SHARING_VIOLATION while the gateway holds the queue");
        expect_answer(wine_ask(gateway, "close 0"), "OK");
        expect_answer(wine_open(external, 0, EXTERNAL_OPEN, EXTERNAL_FILE), "OK");
}

/* A gateway (a local process) holds INQUEUE3 and deletes a P1 file as it
 * delivers, while External under Wine tries to create its missing lock
 * file. The kernel holds the P1 folder for a create: the attempt must be
 * answered at once, ERROR_SHARING_VIOLATION, so the delete goes through;
 * once the gateway lets go External gets its lock. */
Test(wine, wine_create_on_a_busy_queue_never_holds_its_folder)
{
        wine_setup_postoffice(true, mount_options);
        InteropPeer *external = wine_start(0, "external");
        g_autofree char *lock = g_build_filename(t.root, "P1", "INQUEUE3.0LK", NULL);
        cr_assert(access(lock, F_OK) != 0, "the lock file must be missing for a create");
        g_autofree char *lock_for_wine = wine_path(lock);
        g_autofree char *command = g_strdup_printf("open 0 %s %s", EXTERNAL_OPEN, lock_for_wine);
        int gateway = -1;
        long long delete_ms = interop_gateway_delete_during(t.root, external, command, &gateway);
        cr_log_info("wine: the gateway deleted a P1 file in %lld ms during External's create", delete_ms);
        /* A create held in the daemon would hold the folder for the lock
         * timeout (10 s): the bound tells the two apart on any machine. */
        cr_expect_lt(delete_ms, 1000, "External's create held the P1 folder for %lld ms", delete_ms);
        expect_answer(interop_peer_read(external, INTEROP_ANSWER_TIMEOUT_MS), "ERROR 32",
                      "External's lock while the gateway holds the queue");
        cr_expect(access(lock, F_OK) != 0, "a refused create left its lock file");
        close(gateway);
        expect_answer(interop_peer_ask(external, command), "OK",
                      "External gets its lock once the gateway has let go");
        expect_answer(wine_ask(external, "close 0"), "OK");
}

/* CONTROL.GLB is read-incremented-written by whoever allocates a message
 * number: two holders would hand out the same .MAI name (KB Q99204). */
Test(wine, wine_exclusive_glb)
{
        wine_setup_postoffice(true, mount_options);
        InteropPeer *first = wine_start(0, "first");
        InteropPeer *second = wine_start(1, "second");

        expect_answer(wine_open(first, 0, "rw - open", "GLB\\CONTROL.GLB"), "OK");
        expect_answer(wine_open(second, 0, "rw - open", "GLB\\CONTROL.GLB"), "ERROR 32",
                      "a second process's open of CONTROL.GLB must be refused with 32");
        expect_answer(wine_open(second, 0, "r rw open", "GLB\\CONTROL.GLB"), "ERROR 32",
                      "also a read that would share");
        expect_answer(wine_ask(first, "close 0"), "OK");
        expect_answer(wine_open(second, 0, "rw - open", "GLB\\CONTROL.GLB"), "OK");
}

/* LockFile conflicts across prefixes, as on a Windows server: 33. Wine
 * maps LockFile to fcntl locks taken by the wineserver, which the kernel
 * keeps for the mount. */
static void wine_check_byte_range_locks(void)
{
        InteropPeer *first = wine_start(0, "first");
        InteropPeer *second = wine_start(1, "second");
        const char *file = "GLB\\ACCESS.GLB";

        expect_answer(wine_open(first, 0, "rw rw open", file), "OK");
        expect_answer(wine_open(second, 0, "rw rw open", file), "OK");
        expect_answer(wine_ask(first, "lock 0 0 586"), "OK", "first record locked");
        expect_answer(wine_ask(second, "lock 0 100 10"), "ERROR 33",
                      "an overlapping lock must fail with ERROR_LOCK_VIOLATION");
        expect_answer(wine_ask(second, "lock 0 586 586"), "OK", "the next record is free");
        expect_answer(wine_ask(first, "lock 0 586 1"), "ERROR 33");
        expect_answer(wine_ask(first, "unlock 0 0 586"), "OK");
        expect_answer(wine_ask(second, "lock 0 100 10"), "OK", "free once unlocked");
        expect_answer(wine_ask(second, "unlock 0 100 10"), "OK");
        expect_answer(wine_ask(second, "unlock 0 586 586"), "OK");
}

Test(wine, wine_byte_range_locks_raw)
{
        wine_setup_postoffice(false, NULL);
        wine_check_byte_range_locks();
}

Test(wine, wine_byte_range_locks_through_mount)
{
        wine_setup_postoffice(true, mount_options);
        wine_check_byte_range_locks();
}

/* All programs of one prefix reach the mount through one wineserver, so
 * the daemon sees them as one holder: Wine's own share modes still hold
 * between them, but a second protocol from the same prefix is not
 * excluded. One prefix per MTA, then (README-interop.md). */
Test(wine, wine_one_prefix_is_one_holder)
{
        wine_setup_postoffice(true, mount_options);
        InteropPeer *external = wine_start(0, "external");
        InteropPeer *gateway = wine_start(0, "gateway-same-prefix");

        expect_answer(wine_open(external, 0, EXTERNAL_OPEN, EXTERNAL_FILE), "OK");
        expect_answer(wine_open(gateway, 0, EXTERNAL_OPEN, EXTERNAL_FILE), "ERROR 32",
                      "Wine's own DENY_ALL between the programs of one prefix");
        expect_answer(wine_open(gateway, 1, GATEWAY_OPEN, GATEWAY_FILE), "OK",
                      "one prefix is one holder for the daemon");
}

int main(int argc, char *argv[])
{
        /* The prefixes are shared, and every test stops their wineservers:
         * one test at a time. */
        return interop_main(argc, argv, wine_prefixes_prepare, wine_prefixes_remove);
}
