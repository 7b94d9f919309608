/* test-samba.c - Debian's smbd exporting a mailbagfs mount.
 *
 * Ordinary files: smbtorture's share-mode and byte-range lock suites give
 * the same outcomes on a share of the mount as on a share of a plain
 * directory. Mailbags: two SMB connections (two smbd processes) never hold
 * one queue at once, whichever protocol each uses.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interop-util.h"
#include "mount-fixture.h"
#include "samba-fixture.h"
#include "sample-postoffice.h"

#define TORTURE_SUITE_TIMEOUT_MS (300 * 1000)

typedef struct {
        MountHarness harness;
        char *raw;   /* a plain directory, shared as [raw] */
        SambaFixture samba;
        InteropPeer peers[2];
        int n_peers;
} SambaTest;

static SambaTest t;

static void samba_test_init(void)
{
        memset(&t, 0, sizeof(t));
        interop_adopt_descendants();
}

static void samba_test_fini(void)
{
        for (int i = 0; i < t.n_peers; i++)
                interop_peer_stop(&t.peers[i]);
        /* smbd first: its processes hold files on the mount. */
        samba_fixture_stop(&t.samba);
        mount_harness_teardown(&t.harness);
        interop_end_descendants(5000);
        g_clear_pointer(&t.raw, g_free);
        t.n_peers = 0;
}

#define samba_skip(...) interop_skip(samba_test_fini, __VA_ARGS__)

TestSuite(samba, .init = samba_test_init, .fini = samba_test_fini, .timeout = 900);

/* Mounts a postoffice (when @options) and starts smbd with [raw] on a
 * plain directory and [mbfs] on the mount. */
static void samba_setup(const char *const *options, bool postoffice)
{
        mount_fixture_setup(&t.harness);
        t.raw = g_build_filename(t.harness.dir, "raw", NULL);
        cr_assert_eq(mkdir(t.raw, 0755), 0);
        if (postoffice) {
                harness_make_postoffice(t.raw);
                harness_make_postoffice(t.harness.backing);
        }
        mount_fixture_mount(&t.harness, options);

        const SambaShare shares[] = {{"raw", t.raw}, {"mbfs", t.harness.mnt}, {NULL, NULL}};
        g_autofree char *reason = NULL;
        if (samba_fixture_start(&t.samba, shares, &reason) < 0)
                samba_skip("smbd cannot run here: %s", reason);
}

/* ---- smbtorture ------------------------------------------------------ */

/* Chosen for what a postoffice relies on, and for finishing in about a
 * minute per share on two cores (README-interop.md has the timings). */
static const struct {
        const char *name;
        const char *why;
} torture_suites[] = {
        {"base.deny1", "SMB1 OpenX deny modes x access, 648 cases, one connection"},
        {"base.deny2", "the same 648 cases across two connections"},
        {"base.denydos", "DENY_DOS handle sharing, what DOS programs get"},
        {"base.ntdeny1", "NTCreateX share access x access mask, one connection per process"},
        {"base.ntdeny2", "the same from two connections"},
        {"smb2.sharemode", "SMB2 share access and access mask matrix"},
        {"raw.open", "open dispositions and attributes over SMB1"},
        {"base.lock", "SMB1 byte-range locks between connections and processes"},
        {"raw.lock", "LockingX: shared/exclusive, stacking, zero-byte, cancel, timeouts"},
        {"smb2.lock", "SMB2 byte-range locks"},
};

/* Outcomes by test name from smbtorture's subunit-style lines
 * ("success: NAME", "failure: NAME [", ...). */
static GHashTable *torture_outcomes(const char *output)
{
        GHashTable *outcomes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autoptr(GRegex) line = g_regex_new(
                "^(success|successful|failure|fail|error|skip|xfail|uxsuccess): ([^\\[\\r\\n]+?)\\s*\\[?\\s*$",
                G_REGEX_MULTILINE, 0, NULL);
        g_autoptr(GMatchInfo) match = NULL;
        g_regex_match(line, output, 0, &match);
        while (g_match_info_matches(match)) {
                g_hash_table_replace(outcomes, g_match_info_fetch(match, 2), g_match_info_fetch(match, 1));
                g_match_info_next(match, NULL);
        }
        return outcomes;
}

static char *torture_describe(GHashTable *outcomes)
{
        g_autoptr(GList) names = g_list_sort(g_hash_table_get_keys(outcomes), (GCompareFunc)strcmp);
        GString *text = g_string_new(NULL);
        for (GList *n = names; n; n = n->next)
                g_string_append_printf(text, "%s%s=%s", text->len ? " " : "", (char *)n->data,
                                       (char *)g_hash_table_lookup(outcomes, n->data));
        return g_string_free(text, FALSE);
}

/* Runs @suite against [@share]; its outcomes, and its output in @out_path. */
static GHashTable *torture_run(const char *share, const char *suite, const char *out_path, gint64 *elapsed_ms)
{
        g_autofree char *unc = samba_fixture_unc(&t.samba, share);
        g_autofree char *port = g_strdup_printf("%d", t.samba.port);
        g_autofree char *user = g_strdup_printf("root%%%s", t.samba.password);
        g_autofree char *basedir = g_strdup_printf("--basedir=%s/torture-%s", t.harness.dir, share);
        g_mkdir_with_parents(basedir + strlen("--basedir="), 0755);
        const char *argv[] = {getenv("SMBTORTURE"), unc, "-p", port, "-U", user, "-s", t.samba.conf, basedir,
                              "--option=client min protocol=NT1", suite, NULL};
        gint64 start = g_get_monotonic_time();
        pid_t pid = interop_spawn_logged(argv, NULL, out_path);
        cr_assert_gt(pid, 0, "cannot run smbtorture");
        if (interop_wait_pid(pid, TORTURE_SUITE_TIMEOUT_MS) == -1) {
                interop_stop_pid(pid, 1000);
                cr_expect_fail("smbtorture %s on [%s] did not finish in %d s", suite, share,
                               TORTURE_SUITE_TIMEOUT_MS / 1000);
        }
        *elapsed_ms = (g_get_monotonic_time() - start) / 1000;
        g_autofree char *output = NULL;
        g_file_get_contents(out_path, &output, NULL, NULL);
        return torture_outcomes(output ? output : "");
}

static bool torture_same(GHashTable *a, GHashTable *b)
{
        if (g_hash_table_size(a) != g_hash_table_size(b))
                return false;
        GHashTableIter iter;
        gpointer name, outcome;
        g_hash_table_iter_init(&iter, a);
        while (g_hash_table_iter_next(&iter, &name, &outcome)) {
                const char *other = g_hash_table_lookup(b, name);
                if (!other || strcmp(other, outcome) != 0)
                        return false;
        }
        return true;
}

Test(samba, samba_ordinary_files_match_raw)
{
        const char *smbtorture = getenv("SMBTORTURE");
        if (!smbtorture || !*smbtorture)
                samba_skip("smbtorture not found at build time (Debian package samba-testsuite)");
        static const char *const options[] = {"-oallow_other", NULL};
        samba_setup(options, false);

        for (size_t i = 0; i < G_N_ELEMENTS(torture_suites); i++) {
                const char *suite = torture_suites[i].name;
                g_autofree char *raw_out = g_strdup_printf("%s/%s.raw.out", t.harness.dir, suite);
                g_autofree char *mbfs_out = g_strdup_printf("%s/%s.mbfs.out", t.harness.dir, suite);
                gint64 raw_ms, mbfs_ms;
                g_autoptr(GHashTable) raw = torture_run("raw", suite, raw_out, &raw_ms);
                g_autoptr(GHashTable) mbfs = torture_run("mbfs", suite, mbfs_out, &mbfs_ms);
                g_autofree char *raw_text = torture_describe(raw);
                g_autofree char *mbfs_text = torture_describe(mbfs);
                /* Not asserted, only reported: timing is no pass criterion. */
                cr_log_info("%s (%s): raw %.1f s [%s]; mbfs %.1f s [%s]", suite, torture_suites[i].why,
                            raw_ms / 1000.0, raw_text, mbfs_ms / 1000.0, mbfs_text);
                if (g_hash_table_size(raw) == 0) {
                        g_autofree char *tail = interop_file_tail(raw_out, 1500);
                        cr_expect_fail("%s reported no outcome on the raw share: %s", suite, tail);
                        continue;
                }
                if (!torture_same(raw, mbfs)) {
                        g_autofree char *tail = interop_file_tail(mbfs_out, 3000);
                        cr_expect_fail("%s differs: raw [%s], through mailbagfs [%s]; mbfs output: %s", suite,
                                       raw_text, mbfs_text, tail);
                }
        }
        mount_fixture_expect_quiet(&t.harness);
}

/* ---- mailbag sessions over two SMB connections ------------------------ */

#define EXTERNAL_OPEN "rw - always"
#define EXTERNAL_FILE "P1\\INQUEUE3.0LK"
#define GATEWAY_OPEN "r w open"
#define GATEWAY_FILE "KEY\\INQUEUE3.KEY"
#define SHARING_VIOLATION "ERROR NT_STATUS_SHARING_VIOLATION"

/* One SMB connection (one smbd process) in a helper process. */
/* A client of @share speaking @dialect ("NT1" for SMB1; NULL: the newest). */
static InteropPeer *smb_connect_dialect(const char *share, const char *name, const char *dialect)
{
        cr_assert_lt(t.n_peers, (int)G_N_ELEMENTS(t.peers));
        InteropPeer *peer = &t.peers[t.n_peers];
        g_autofree char *port = g_strdup_printf("%d", t.samba.port);
        const char *argv[] = {getenv("SMBHOLD"), port, share, dialect, NULL};
        g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "SMBHOLD_PASSWORD", t.samba.password, TRUE);
        g_autofree char *err_path = g_strdup_printf("%s/%s.stderr", t.harness.dir, name);
        cr_assert_eq(interop_peer_start(peer, name, argv, (const char *const *)env, err_path), 0);
        t.n_peers++;
        g_autofree char *ready = interop_peer_read(peer, INTEROP_START_TIMEOUT_MS);
        if (!ready || strcmp(ready, "READY") != 0) {
                g_autofree char *err = interop_peer_stderr(peer);
                if (strstr(err, "No module named 'impacket"))
                        samba_skip("no SMB client library: Debian package python3-impacket");
                cr_assert_fail("SMB client %s did not connect to [%s]: %s", name, share, err);
        }
        return peer;
}

static InteropPeer *smb_connect(const char *share, const char *name)
{
        return smb_connect_dialect(share, name, NULL);
}

static char *smb_open(InteropPeer *peer, int slot, const char *mode, const char *file)
{
        g_autofree char *command = g_strdup_printf("open %d %s %s", slot, mode, file);
        return interop_peer_ask(peer, command);
}

/* expect_answer(ASK, EXPECTED[, "why"]): checks one answer, frees it. */
#define expect_answer(answer_expr, expected, ...)                                              \
        do {                                                                                   \
                g_autofree char *answer_ = (answer_expr);                                      \
                cr_expect(answer_ && strcmp(answer_, (expected)) == 0,                         \
                          "%s: got '%s', expected '%s'. " __VA_ARGS__, #answer_expr,            \
                          answer_ ? answer_ : "(no answer)", (expected));                      \
        } while (0)

Test(samba, samba_collision_on_raw)
{
        static const char *const options[] = {"-oallow_other", NULL};
        samba_setup(options, true);
        InteropPeer *external = smb_connect("raw", "external");
        InteropPeer *gateway = smb_connect("raw", "gateway");
        expect_answer(smb_open(external, 0, EXTERNAL_OPEN, EXTERNAL_FILE), "OK");
        expect_answer(smb_open(gateway, 0, GATEWAY_OPEN, GATEWAY_FILE), "OK",
                      "on a plain share both hold the queue at once: the collision");
}

/* The second connection's attempt is refused as a sharing violation. The
 * daemon answers smbd ETXTBSY at once, which smbd maps to
 * NT_STATUS_SHARING_VIOLATION: an SMB2 client hears it at once, as from
 * Windows (an SMB1 client after smbd's own retries, up to a second). */
Test(samba, samba_sessions_refused)
{
        static const char *const options[] = {"-oallow_other", NULL};
        samba_setup(options, true);
        InteropPeer *external = smb_connect("mbfs", "external");
        InteropPeer *gateway = smb_connect("mbfs", "gateway");

        expect_answer(smb_open(external, 0, EXTERNAL_OPEN, EXTERNAL_FILE), "OK");
        expect_answer(smb_open(gateway, 0, GATEWAY_OPEN, GATEWAY_FILE), SHARING_VIOLATION,
                      "the gateway's session attempt while External holds the queue");
        expect_answer(interop_peer_ask(external, "close 0"), "OK");
        expect_answer(smb_open(gateway, 0, GATEWAY_OPEN, GATEWAY_FILE), "OK");
}

/* The trail names the SMB client behind what smbd did: its address on
 * the loopback and the user it logged on as. */
Test(samba, samba_trail_names_the_client)
{
        static const char *const options[] = {"-oallow_other", NULL};
        samba_setup(options, true);
        InteropPeer *gateway = smb_connect("mbfs", "gateway");
        expect_answer(smb_open(gateway, 0, GATEWAY_OPEN, GATEWAY_FILE), "OK");
        expect_answer(interop_peer_ask(gateway, "close 0"), "OK");

        g_autofree char *trail = harness_trail_text(t.harness.backing);
        cr_assert_not_null(trail, "no trail in %s", t.harness.backing);
        /* Values are percent-encoded: ' ' is %20, '=' %3D. */
        bool found = false;
        g_auto(GStrv) lines = g_strsplit(trail, "\n", -1);
        for (char **line = lines; *line && !found; line++)
                found = strstr(*line, "file=KEY/INQUEUE3.KEY") && strstr(*line, "program=smbd") &&
                        strstr(*line, "client=smb%20127.0.0.1:") && strstr(*line, "%20user%3Droot");
        cr_expect(found, "no line of smbd's open with its client: %s", trail);
}

/* A gateway (a local process) holds INQUEUE3 and deletes a P1 file as it
 * delivers, while an External through smbd (@dialect) tries to create its
 * missing lock file. The kernel holds the P1 folder for a create: the
 * attempt must be answered without a wait, as a sharing violation, so the
 * gateway's delete goes through meanwhile; once the gateway lets go the
 * External gets its lock. */
static void samba_create_meets_busy_queue(const char *dialect)
{
        InteropPeer *external = smb_connect_dialect("mbfs", "external", dialect);
        g_autofree char *lock = g_build_filename(t.harness.mnt, "P1", "INQUEUE3.0LK", NULL);
        cr_assert(access(lock, F_OK) != 0, "the lock file must be missing for a create");
        g_autofree char *command = g_strdup_printf("open 0 %s %s", EXTERNAL_OPEN, EXTERNAL_FILE);
        int gateway = -1;
        long long delete_ms = interop_gateway_delete_during(t.harness.mnt, external, command, &gateway);
        cr_log_info("%s: the gateway deleted a P1 file in %lld ms during External's create",
                    dialect ? dialect : "SMB2", delete_ms);
        /* A create held in the daemon would hold the folder for the lock
         * timeout (10 s): the bound tells the two apart on any machine. */
        cr_expect_lt(delete_ms, 1000, "External's create held the P1 folder for %lld ms", delete_ms);
        expect_answer(interop_peer_read(external, INTEROP_ANSWER_TIMEOUT_MS), SHARING_VIOLATION,
                      "External's lock while the gateway holds the queue");
        cr_expect(access(lock, F_OK) != 0, "a refused create left its lock file");
        close(gateway);
        expect_answer(interop_peer_ask(external, command), "OK",
                      "External gets its lock once the gateway has let go");
        expect_answer(interop_peer_ask(external, "close 0"), "OK");
        cr_assert_eq(unlink(lock), 0);
}

Test(samba, samba_create_on_a_busy_queue_never_holds_its_folder)
{
        static const char *const options[] = {"-oallow_other", NULL};
        samba_setup(options, true);
        samba_create_meets_busy_queue(NULL);
        samba_create_meets_busy_queue("NT1");
}

/* The daemon's own account of contention: the lock state of @file and the
 * counters of the mount, as one string to compare. */
static char *samba_contention_state(const char *file)
{
        g_autofree char *path = g_build_filename(t.harness.mnt, file, NULL);
        g_strdelimit(path, "\\", '/');
        g_autofree char *lock = harness_attribute(path, "user.mailbag.lock");
        g_autofree char *stats = harness_attribute(t.harness.mnt, "user.mailbag.stats");
        return g_strdup_printf("%s|%s", lock ? lock : "", stats ? stats : "");
}

/* @holder holds the queue with @hold_mode on @hold_file; @contender tries
 * @try_mode on @try_file and must not get it until @holder closes. */
static void samba_check_exclusion(InteropPeer *holder, const char *hold_mode, const char *hold_file,
                                  InteropPeer *contender, const char *try_mode, const char *try_file)
{
        expect_answer(smb_open(holder, 0, hold_mode, hold_file), "OK");
        g_autofree char *before = samba_contention_state(try_file);
        g_autofree char *command = g_strdup_printf("open 0 %s %s", try_mode, try_file);
        cr_assert_eq(interop_peer_send(contender, command), 0);

        /* The event to wait for: the daemon has seen the attempt. It either
         * queues the contender (a waiter in user.mailbag.lock) or refuses
         * it and counts that in user.mailbag.stats, after which smbd may
         * retry on its own. */
        g_autofree char *state = NULL;
        gint64 deadline = g_get_monotonic_time() + INTEROP_START_TIMEOUT_MS * 1000LL;
        while (!interop_peer_has_answer(contender) && g_get_monotonic_time() < deadline) {
                g_free(state);
                state = samba_contention_state(try_file);
                if (interop_mailbag_waiters(state) > 0 || strcmp(state, before) != 0)
                        break;
                g_usleep(20 * 1000); /* polling interval of the event check */
        }
        if (interop_peer_has_answer(contender) || interop_mailbag_waiters(state) <= 0) {
                /* Refused (smbd hears ETXTBSY at once): the answer comes
                 * without the holder closing; granted would be the overlap. */
                expect_answer(interop_peer_read(contender, INTEROP_ANSWER_TIMEOUT_MS), SHARING_VIOLATION,
                              "the contender must not get the queue while it is held");
                expect_answer(interop_peer_ask(holder, "close 0"), "OK");
                expect_answer(interop_peer_ask(contender, command), "OK",
                              "the contender gets the queue once the holder has closed");
                expect_answer(interop_peer_ask(contender, "close 0"), "OK");
                return;
        }
        cr_expect_neq(strcmp(state, before), 0, "the daemon never showed the contender's attempt: %s", state);
        expect_answer(interop_peer_ask(holder, "close 0"), "OK");
        expect_answer(interop_peer_read(contender, INTEROP_ANSWER_TIMEOUT_MS), "OK",
                      "the waiting contender gets the queue once the holder has closed");
        expect_answer(interop_peer_ask(contender, "close 0"), "OK");
}

/* The second connection gets the session only once the first has ended,
 * in both directions: refused while it is held, granted after. */
Test(samba, samba_sessions_exclude)
{
        static const char *const options[] = {"-oallow_other", NULL};
        samba_setup(options, true);
        InteropPeer *external = smb_connect("mbfs", "external");
        InteropPeer *gateway = smb_connect("mbfs", "gateway");

        samba_check_exclusion(external, EXTERNAL_OPEN, EXTERNAL_FILE, gateway, GATEWAY_OPEN, GATEWAY_FILE);
        samba_check_exclusion(gateway, GATEWAY_OPEN, GATEWAY_FILE, external, EXTERNAL_OPEN, EXTERNAL_FILE);
}

int main(int argc, char *argv[])
{
        /* smbtorture loads both cores by itself; the session tests are not
         * to compete with it. */
        return interop_main(argc, argv, NULL, NULL);
}
