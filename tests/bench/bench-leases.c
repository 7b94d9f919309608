/* bench-leases.c - what a lease costs: uncontended session open/close
 * (External's P1/INQUEUE3.0LK, O_RDWR|O_CREAT) and KEY write section
 * (KEY/INQUEUE3.KEY, O_RDWR) per second, on a plain directory, through a
 * mailbagfs mount on ext4 and on tmpfs, on a GlusterFS client mount, and
 * through mailbagfs on that client mount. The daemon is the one $MAILBAGFS
 * names, so builds of two commits can be compared. Run by
 * tests/bench/bench-leases.sh; timing only, never a pass/fail test.
 *
 *   bench-leases [SECONDS]
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gluster-fixture.h"
#include "mount-harness.h"

#define KEY_SIZE 560

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int make_postoffice(const char *root)
{
        if (mkdir(root, 0755) < 0 && errno != EEXIST)
                return -errno;
        const char *folders[] = {"P1", "KEY", "MBG", "GLB"};
        for (size_t i = 0; i < G_N_ELEMENTS(folders); i++) {
                g_autofree char *dir = g_build_filename(root, folders[i], NULL);
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return -errno;
        }
        g_autofree char *key = g_build_filename(root, "KEY", "INQUEUE3.KEY", NULL);
        g_autofree char *zeros = g_malloc0(KEY_SIZE);
        g_autofree char *mbg = g_build_filename(root, "MBG", "INQUEUE3.MBG", NULL);
        if (!g_file_set_contents(key, zeros, KEY_SIZE, NULL) || !g_file_set_contents(mbg, "", 0, NULL))
                return -EIO;
        return 0;
}

/* Opens and closes @relpath under @root for @seconds; opens per second, or
 * -errno of the first failure. */
static double rate(const char *root, const char *relpath, int flags, double seconds)
{
        g_autofree char *path = g_build_filename(root, relpath, NULL);
        long count = 0;
        double start = now_s(), elapsed = 0;
        do {
                for (int i = 0; i < 50; i++, count++) {
                        int fd = open(path, flags | O_CLOEXEC, 0644);
                        if (fd < 0)
                                return -errno;
                        close(fd);
                }
                elapsed = now_s() - start;
        } while (elapsed < seconds);
        return count / elapsed;
}

static void report(const char *target, const char *root, double seconds)
{
        double session = rate(root, "P1/INQUEUE3.0LK", O_RDWR | O_CREAT, seconds);
        double key = rate(root, "KEY/INQUEUE3.KEY", O_RDWR, seconds);
        printf("%-34s %12.0f %12.0f\n", target, session, key);
        fflush(stdout);
}

/* A mailbagfs mount serving @backing (NULL: the harness's own folder). */
static int mount_over(MountHarness *h, const char *backing)
{
        int r = mount_harness_setup(h);
        if (r < 0)
                return r;
        if (backing) {
                g_free(h->backing);
                h->backing = g_strdup(backing);
        } else if ((r = make_postoffice(h->backing)) < 0) {
                return r;
        }
        const char *const args[] = {"-olock_timeout=30", NULL};
        return mount_harness_mount(h, args);
}

int main(int argc, char **argv)
{
        double seconds = argc > 1 ? atof(argv[1]) : 3.0;
        if (!getenv("MAILBAGFS")) {
                fprintf(stderr, "bench-leases: set MAILBAGFS to the daemon to measure\n");
                return 2;
        }
        printf("%-34s %12s %12s\n", "target (opens+closes per second)", "session", "KEY write");

        g_autofree char *raw = g_dir_make_tmp("mailbagfs-bench-raw-XXXXXX", NULL);
        g_autofree char *raw_po = g_build_filename(raw, "po", NULL);
        if (make_postoffice(raw_po) == 0)
                report("ext4 directory", raw_po, seconds);
        harness_remove_tree(raw);

        MountHarness local = {0};
        if (mount_over(&local, NULL) == 0)
                report("mailbagfs on ext4", local.mnt, seconds);
        else
                printf("%-34s mount failed\n", "mailbagfs on ext4");
        mount_harness_teardown(&local);

        char shm_template[] = "/dev/shm/mailbagfs-bench-XXXXXX";
        char *shm = mkdtemp(shm_template);
        g_autofree char *shm_po = shm ? g_build_filename(shm, "po", NULL) : NULL;
        MountHarness on_tmpfs = {0};
        if (shm && make_postoffice(shm_po) == 0 && mount_over(&on_tmpfs, shm_po) == 0)
                report("mailbagfs on tmpfs", on_tmpfs.mnt, seconds);
        else
                printf("%-34s mount failed\n", "mailbagfs on tmpfs");
        mount_harness_teardown(&on_tmpfs);
        if (shm)
                harness_remove_tree(shm);

        GlusterFixture volume;
        g_autofree char *reason = NULL;
        if (gluster_fixture_start(&volume, &reason) < 0) {
                printf("GlusterFS skipped: %s\n", reason);
                return 0;
        }
        g_autofree char *po = g_build_filename(volume.clients[0], "po", NULL);
        if (make_postoffice(po) == 0) {
                report("GlusterFS client mount", po, seconds);
                MountHarness on_gluster = {0};
                if (mount_over(&on_gluster, po) == 0)
                        report("mailbagfs on GlusterFS client", on_gluster.mnt, seconds);
                else
                        printf("%-34s mount failed\n", "mailbagfs on GlusterFS client");
                mount_harness_teardown(&on_gluster);
        }
        gluster_fixture_stop(&volume);
        return 0;
}
