/* test-gluster.c - two mailbagfs daemons on two GlusterFS client mounts of
 * one volume, as two cluster nodes serve one postoffice: a lease taken
 * through node A refuses or queues the same on node B and is granted once
 * released, killing node A's daemon lets node B's waiter in, a dead node's
 * -V20 lock file is removed by node B when it takes the queue, and (the
 * premise of it all) a plain lock through one Gluster client conflicts
 * with the other client and with node B's daemon.
 *
 * The volume is glusterd's own, on loopback in namespaces of its own
 * (tests/harness/gluster-fixture.h); where glusterd cannot run, each test
 * skips with the reason. Each competing open is made by a forked child
 * through one of the mailbagfs mounts and reports its errno, so "refused"
 * and "granted" are what a program on that node would see.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "gluster-fixture.h"
#include "mount-fixture.h"
#include "po-sim-json.h"
#include "sample-postoffice.h"
#include "tool-run.h"

static GlusterFixture volume;
static MountHarness node_a, node_b;

/* Bounds for events that normally take milliseconds; hitting one fails.
 * Over Gluster a lock or a lookup is a network round trip, on a loaded
 * machine several. */
#define EVENT_TIMEOUT_MS 60000

#include "cluster-util.h"

/* The postoffice's folder in the volume, the same on both client mounts. */
#define PO_FOLDER "po"

static void unmount_nodes(void)
{
        /* The daemons first: their backing stores are the client mounts. */
        mount_harness_teardown(&node_b);
        mount_harness_teardown(&node_a);
        gluster_fixture_stop(&volume);
}

/* A skipped test does not get its .fini: clean up first. */
static void start_volume(void)
{
        g_autofree char *reason = NULL;
        if (gluster_fixture_start(&volume, &reason) < 0) {
                unmount_nodes();
                cr_skip_test("GlusterFS cannot run here: %s", reason);
        }
}

static void mount_node(MountHarness *node, int client, const char *lock_timeout)
{
        mount_fixture_setup(node);
        /* The daemon serves the postoffice through this node's client. */
        g_autofree char *po = g_build_filename(volume.clients[client], PO_FOLDER, NULL);
        mount_harness_set_backing(node, po);
        g_autofree char *option = g_strdup_printf("-olock_timeout=%s", lock_timeout);
        const char *const args[] = {option, NULL};
        mount_fixture_mount(node, args);
}

static void mount_nodes(const char *lock_timeout)
{
        start_volume();
        g_autofree char *po = g_build_filename(volume.clients[0], PO_FOLDER, NULL);
        harness_make_postoffice(po);
        mount_node(&node_a, 0, lock_timeout);
        mount_node(&node_b, 1, lock_timeout);
}


/* The lease file as client @client of the volume sees it, bypassing
 * mailbagfs. */
static int open_lease_file(int client)
{
        g_autofree char *path = g_build_filename(volume.clients[client], PO_FOLDER, CLUSTER_FILE, NULL);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        cr_assert_geq(fd, 0, "%s: %s", path, g_strerror(errno));
        return fd;
}

/* The type of the first OFD lock another descriptor holds on @offset, as
 * seen through @fd: F_UNLCK when none. */
static int lock_seen(int fd, off_t offset)
{
        struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = offset, .l_len = 1};
        cr_assert_eq(fcntl(fd, F_OFD_GETLK, &probe), 0, "F_OFD_GETLK: %s", g_strerror(errno));
        return probe.l_type;
}

static void expect_quiet_logs(void)
{
        mount_fixture_expect_quiet(&node_a);
        mount_fixture_expect_quiet(&node_b);
}

Test(gluster, a_lease_through_node_a_refuses_the_same_on_node_b, .fini = unmount_nodes, .timeout = 600)
{
        mount_nodes("0.3");
        Opener external = external_on_node_a_refuses_node_b(&node_a, &node_b);

        /* The lease is a lock on the volume: node B's client sees it. */
        int fd_b = open_lease_file(1);
        off_t session = cluster_offset(LEASE_SESSION, "INQUEUE3");
        cr_expect_eq(lock_seen(fd_b, session), F_WRLCK,
                     "node A's session lease must be a write lock at byte %lld of the lease file",
                     (long long)session);

        opener_stop(&external);
        /* The kernel sends the release after close() returns. */
        long long deadline = now_ms() + EVENT_TIMEOUT_MS;
        while (lock_seen(fd_b, session) != F_UNLCK && now_ms() < deadline)
                g_usleep(5000);
        cr_expect_eq(lock_seen(fd_b, session), F_UNLCK, "the lease ended, its lock must go");
        close(fd_b);
        gateway_on_node_b_refuses_node_a(&node_a, &node_b);
        expect_quiet_logs();
}

Test(gluster, a_waiter_on_node_b_gets_in_when_node_a_ends_its_hold, .fini = unmount_nodes, .timeout = 600)
{
        mount_nodes("60");
        scenario_node_b_gets_in_when_node_a_ends(&node_a, &node_b, "gluster", false);
        expect_quiet_logs();
}

Test(gluster, a_busy_node_a_lets_node_bs_waiter_in, .fini = unmount_nodes, .timeout = 600)
{
        mount_nodes("60");
        scenario_busy_node_a_lets_node_b_in(&node_a, &node_b);
        expect_quiet_logs();
}

Test(gluster, killing_node_as_daemon_lets_node_bs_waiter_in, .fini = unmount_nodes, .timeout = 600)
{
        mount_nodes("60");
        scenario_node_b_gets_in_when_node_a_ends(&node_a, &node_b, "gluster", true);
}

Test(gluster, a_dead_nodes_lock_file_is_removed_by_node_b, .fini = unmount_nodes, .timeout = 600)
{
        mount_nodes("60");
        /* A -V20 program on node A: its lock file is the lock. */
        Opener v20 = opener_start(&node_a, "P1/INQUEUE3.005", O_WRONLY | O_CREAT | O_EXCL);
        cr_assert_eq(opener_result(&v20), 0);
        Opener gateway = opener_start(&node_b, "KEY/INQUEUE3.KEY", O_RDONLY);
        wait_until_waiting(&node_b, &gateway);

        long long killed = now_ms();
        cr_assert_eq(kill(node_a.daemon, SIGKILL), 0);
        cr_expect_eq(opener_result(&gateway), 0);
        cr_log_info("gluster: node B took over node A's -V20 hold %lld ms after node A's daemon was killed",
                    now_ms() - killed);
        /* The brick is the truth: a client's caches may lag. */
        g_autofree char *stale = g_build_filename(volume.brick, PO_FOLDER, "P1", "INQUEUE3.005", NULL);
        cr_expect_neq(access(stale, F_OK), 0,
                      "the dead node's -V20 lock file would lock the queue for every -V20 program");
        opener_stop(&gateway);
        opener_stop(&v20);
        g_autofree char *problems = mount_harness_log_problems(&node_b);
        cr_expect(problems && strstr(problems, "removed stale lock file P1/INQUEUE3.005"), "node B's log: %s",
                  problems);
}

/* The premise: locks through one Gluster client mount conflict with the
 * other's, and node B's daemon honours a lock it did not take. */
Test(gluster, a_plain_lock_through_one_client_conflicts_with_the_other, .fini = unmount_nodes,
     .timeout = 600)
{
        mount_nodes("0.3");
        /* Both daemons have joined the postoffice: the lease file exists. */
        cr_assert_eq(open_once(&node_a, "KEY/INQUEUE3.KEY", O_RDONLY), 0);
        cr_assert_eq(open_once(&node_b, "KEY/INQUEUE3.KEY", O_RDONLY), 0);

        off_t session = cluster_offset(LEASE_SESSION, "INQUEUE3");
        int fd_a = open_lease_file(0);
        int fd_b = open_lease_file(1);
        struct flock hold = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = session, .l_len = 1};
        /* The daemons' leases of the opens above end with the kernel's
         * release, which comes after close() returns: wait for it. */
        int r = -1;
        for (int waited = 0; r < 0 && waited < 20000; waited += 10) {
                r = fcntl(fd_a, F_OFD_SETLK, &hold);
                if (r < 0 && errno != EAGAIN && errno != EACCES)
                        break;
                if (r < 0)
                        g_usleep(10000);
        }
        cr_assert_eq(r, 0, "OFD lock through client A: %s", g_strerror(errno));

        struct flock take = hold;
        cr_expect_eq(fcntl(fd_b, F_OFD_SETLK, &take), -1, "an OFD lock through client B must conflict");
        cr_expect(errno == EAGAIN || errno == EACCES, "errno %s", g_strerror(errno));
        cr_expect_eq(lock_seen(fd_b, session), F_WRLCK);
        /* A classic process-associated lock of another process too. */
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                struct flock classic = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = session, .l_len = 1};
                _exit(fcntl(fd_b, F_SETLK, &classic) == 0 ? 0 : errno == EAGAIN || errno == EACCES ? 1 : 2);
        }
        int wstatus = 0;
        cr_assert_eq(waitpid(child, &wstatus, 0), child);
        cr_expect(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 1,
                  "an fcntl lock through client B must conflict (child status %d)", wstatus);

        cr_expect_eq(open_once(&node_b, "KEY/INQUEUE3.KEY", O_RDONLY), EBUSY,
                     "node B's daemon must honour a lock on the session byte taken through client A");
        cr_expect_eq(open_once(&node_a, "KEY/INQUEUE3.KEY", O_RDONLY), EBUSY,
                     "node A's daemon must honour it too: it is not its own");

        hold.l_type = F_UNLCK;
        cr_assert_eq(fcntl(fd_a, F_OFD_SETLK, &hold), 0);
        take.l_type = F_WRLCK;
        cr_expect_eq(fcntl(fd_b, F_OFD_SETLK, &take), 0, "once released: %s", g_strerror(errno));
        take.l_type = F_UNLCK;
        cr_expect_eq(fcntl(fd_b, F_OFD_SETLK, &take), 0);
        close(fd_a);
        close(fd_b);
        cr_expect_eq(open_once(&node_b, "KEY/INQUEUE3.KEY", O_RDONLY), 0);
        expect_quiet_logs();
}

static void mount_nodes_with_mkpo(void)
{
        start_volume();
        g_autofree char *po = g_build_filename(volume.clients[0], PO_FOLDER, NULL);
        harness_mkpo(po, 8, 0);
        mount_node(&node_a, 0, "10");
        mount_node(&node_b, 1, "10");
}

/* The mixed-protocol workload with its consumers and producers split over
 * the two nodes: every message delivered once, no [021], no [008]. It
 * lost 132 and 153 of 3,000 messages while the client mounts cached
 * attributes for GlusterFS's default second: a node read a mailbag only
 * up to the size it had seen, missing the records the other node had
 * appended (the fixture now mounts them as the README says). */
Test(gluster, po_sim_split_over_two_nodes_is_clean, .fini = unmount_nodes, .timeout = 1500)
{
        mount_nodes_with_mkpo();
        g_auto(ToolRun) run = {0};
        tool_run(&run, "PO_SIM", node_a.mnt, "--also", node_b.mnt, "--messages", "3000",
                 "--timeout", "1200", "--json", NULL);
        cr_log_info("gluster: po-sim split over two nodes: %s", run.out);
        cr_assert_eq(run.status, 0, "po-sim: %s%s", run.out, run.err);
        unsigned queued = po_sim_json_count(run.out, "queued");
        cr_expect_geq(queued, 3000, "%s", run.out);
        po_sim_expect_clean(run.out, queued);
}

/* A volume and its client mounts left as GlusterFS sets them up: the
 * clients cache attributes and names in the kernel for a second, the
 * volume's performance translators (md-cache, write-behind, ...) keep
 * copies of their own. The split run above lost mail there (600
 * messages: 4 lost, 1 duplicate, 2 [021] before the daemon refused such a
 * backing), so the daemon refuses to start on it, and says which settings
 * to change. */
Test(gluster, a_volume_and_client_left_at_their_defaults_are_refused, .fini = unmount_nodes,
     .timeout = 600)
{
        g_autofree char *reason = NULL;
        if (gluster_fixture_start_as(&volume, GLUSTER_DEFAULTS, &reason) < 0) {
                unmount_nodes();
                cr_skip_test("GlusterFS cannot run here: %s", reason);
        }
        g_autofree char *po = g_build_filename(volume.clients[0], PO_FOLDER, NULL);
        harness_make_postoffice(po);

        cr_assert_eq(mount_harness_setup(&node_a), 0);
        mount_harness_set_backing(&node_a, po);
        int r = mount_harness_mount(&node_a, NULL);
        g_autofree char *log = NULL;
        g_file_get_contents(node_a.log, &log, NULL, NULL);
        cr_assert_lt(r, 0, "the daemon served a backing on a caching GlusterFS client");
        cr_assert_not_null(log);
        cr_log_info("gluster defaults: %s", log);
        cr_expect(!harness_is_mounted(node_a.mnt, "fuse.mailbagfs"));
        static const char *const named[] = {
                "refused", "attribute-timeout=0", "entry-timeout=0", "negative-timeout=0",
                /* md-cache and write-behind are on by default in every
                 * GlusterFS release this runs with. */
                "performance.stat-prefetch", "performance.write-behind", "docs/cluster.md",
        };
        for (gsize i = 0; i < G_N_ELEMENTS(named); i++)
                cr_expect(strstr(log, named[i]), "the refusal does not name %s: %s", named[i], log);
        cr_expect_null(strstr(log, "performance.io-threads"), "io-threads keeps no copies: %s", log);
}

/* A byte-range lock taken through node A's mailbagfs refuses the same
 * range through node B's, and is seen there with F_GETLK. */
Test(gluster, a_byte_range_lock_through_one_node_refuses_the_other, .fini = unmount_nodes,
     .timeout = 600)
{
        mount_nodes("0.3");
        g_autofree char *through_a = g_build_filename(node_a.mnt, "MBG", "INQUEUE3.MBG", NULL);
        g_autofree char *through_b = g_build_filename(node_b.mnt, "MBG", "INQUEUE3.MBG", NULL);
        int fd_a = open(through_a, O_RDWR);
        int fd_b = open(through_b, O_RDWR);
        cr_assert(fd_a >= 0 && fd_b >= 0, "%s", g_strerror(errno));
        struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 16};
        cr_assert_eq(fcntl(fd_a, F_SETLK, &lock), 0, "lock through node A: %s", g_strerror(errno));
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                struct flock mine = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 104, .l_len = 4};
                if (fcntl(fd_b, F_SETLK, &mine) == 0)
                        _exit(0);
                if (errno != EAGAIN && errno != EACCES)
                        _exit(2);
                struct flock probe = mine;
                if (fcntl(fd_b, F_GETLK, &probe) < 0 || probe.l_type != F_WRLCK)
                        _exit(3);
                _exit(1);
        }
        int wstatus = 0;
        cr_assert_eq(waitpid(child, &wstatus, 0), child);
        cr_expect(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 1,
                  "through node B the range must be refused and reported (child status %d)", wstatus);
        close(fd_a);
        close(fd_b);
}

/* Opens @path, trying again every 10 ms while the open fails, for
 * EVENT_TIMEOUT_MS at most; the descriptor or -1. */
static int open_retrying(const char *path, int flags)
{
        int fd = -1;
        for (int waited = 0; fd < 0 && waited < EVENT_TIMEOUT_MS; waited += 10) {
                fd = open(path, flags);
                if (fd < 0)
                        g_usleep(10000);
        }
        return fd;
}

/* CONTROL.GLB is read-incremented-written under its exclusive lease: one
 * node's hold refuses the other's, and what one node wrote the other
 * reads. */
Test(gluster, control_glb_is_exclusive_and_coherent_across_nodes, .fini = unmount_nodes,
     .timeout = 600)
{
        mount_nodes_with_mkpo();
        g_autofree char *through_a = g_build_filename(node_a.mnt, "GLB", "CONTROL.GLB", NULL);
        g_autofree char *through_b = g_build_filename(node_b.mnt, "GLB", "CONTROL.GLB", NULL);
        {
                /* Node B reads first, so its client has the old content. */
                int fd_first = open(through_b, O_RDWR);
                cr_assert_geq(fd_first, 0, "%s", g_strerror(errno));
                uint32_t old[2];
                cr_assert_eq(pread(fd_first, old, sizeof old, 0), (ssize_t)sizeof old);
                close(fd_first);
                g_usleep(200000);
        }
        int fd_a = open_retrying(through_a, O_RDWR);
        cr_assert_geq(fd_a, 0, "%s", g_strerror(errno));
        cr_expect_eq(open_once(&node_b, "GLB/CONTROL.GLB", O_RDWR), EBUSY);
        uint32_t numbers[2] = {0};
        cr_assert_eq(pread(fd_a, numbers, sizeof numbers, 0), (ssize_t)sizeof numbers);
        numbers[1] += 1000;
        cr_assert_eq(pwrite(fd_a, numbers, sizeof numbers, 0), (ssize_t)sizeof numbers);
        close(fd_a);
        uint32_t seen[2] = {0};
        int fd_b = open_retrying(through_b, O_RDWR);
        cr_assert_geq(fd_b, 0, "%s", g_strerror(errno));
        cr_assert_eq(pread(fd_b, seen, sizeof seen, 0), (ssize_t)sizeof seen);
        cr_expect_eq(seen[1], numbers[1], "node B read %u, node A wrote %u", seen[1], numbers[1]);
        close(fd_b);
}
